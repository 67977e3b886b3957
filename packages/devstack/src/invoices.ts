/**
 * Synthetic invoice documents for the demo, end-to-end tests and benchmarks: OCR-like text and the
 * validated fields a document-capture app would hold. Deterministic for a seed.
 */

export interface SyntheticDocument {
  id: string;
  text: string;
  fields: Record<string, string | number | null>;
}

/** A seeded PRNG (mulberry32) for test data: small and fast, numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VENDORS = [
  ['Nordwind Logistik GmbH', 'DE293847561', 'Hafenstraße 12, 20457 Hamburg'],
  ['Atelier Lumière SARL', 'FR40123456789', '18 rue des Lilas, 69003 Lyon'],
  ['Castelli Forniture S.p.A.', 'IT01234567890', 'Via Roma 45, 20121 Milano'],
  ['Brightline Office Supply Ltd', 'GB123456789', '7 King Street, Manchester M2 4LQ'],
  ['Van Dijk Techniek B.V.', 'NL123456789B01', 'Keizersgracht 221, 1016 DV Amsterdam'],
  ['Solara Energia S.L.', 'ESB12345678', 'Calle Mayor 9, 28013 Madrid'],
] as const;
const CUSTOMERS = [
  'Acme Capture AG',
  'Helios Insurance plc',
  'Polaris Retail GmbH',
  'Meridian Health SA',
] as const;
const ITEMS = [
  ['Thermal paper rolls 80mm', 3.9],
  ['Scanner maintenance (hour)', 95],
  ['Document archive boxes', 4.5],
  ['OCR licence seat (month)', 29],
  ['Courier delivery', 18.5],
  ['Toner cartridge black', 74.9],
  ['Consulting day', 880],
] as const;
const CURRENCIES = ['EUR', 'EUR', 'EUR', 'GBP', 'CHF'] as const;

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export interface SyntheticInvoiceOptions {
  count: number;
  seed?: number;
  /** Pad the OCR text with realistic terms-and-conditions lines up to about this many bytes. */
  textBytes?: number;
  idPrefix?: string;
}

export function syntheticInvoices(opts: SyntheticInvoiceOptions): SyntheticDocument[] {
  const docs: SyntheticDocument[] = [];
  for (let i = 0; i < opts.count; i++) docs.push(syntheticInvoice(i, opts));
  return docs;
}

export function syntheticInvoice(
  index: number,
  opts: Omit<SyntheticInvoiceOptions, 'count'> = {},
): SyntheticDocument {
  const rand = seededRandom((opts.seed ?? 42) * 100_003 + index);
  const [vendor, vat, address] = pick(rand, VENDORS);
  const customer = pick(rand, CUSTOMERS);
  const currency = pick(rand, CURRENCIES);
  const month = 1 + Math.floor(rand() * 12);
  const day = 1 + Math.floor(rand() * 28);
  const invoiceDate = `2026-${pad(month)}-${pad(day)}`;
  const dueDate = `2026-${pad(Math.min(12, month + 1))}-${pad(day)}`;
  const invoiceNumber = `INV-${2026}${pad(month)}-${pad(Math.floor(rand() * 100_000), 5)}`;
  const lines: string[] = [];
  let net = 0;
  const lineCount = 1 + Math.floor(rand() * 4);
  for (let l = 0; l < lineCount; l++) {
    const [item, price] = pick(rand, ITEMS);
    const qty = 1 + Math.floor(rand() * 20);
    const amount = Math.round(qty * price * 100) / 100;
    net += amount;
    lines.push(
      `${pad(l + 1)}  ${item.padEnd(30)} ${String(qty).padStart(4)} x ${price.toFixed(2).padStart(8)}  ${amount.toFixed(2).padStart(10)}`,
    );
  }
  net = Math.round(net * 100) / 100;
  const vatRate = currency === 'CHF' ? 0.081 : currency === 'GBP' ? 0.2 : 0.19;
  const tax = Math.round(net * vatRate * 100) / 100;
  const total = Math.round((net + tax) * 100) / 100;
  const iban = `DE${pad(Math.floor(rand() * 100))} 3704 0044 0532 ${pad(Math.floor(rand() * 10_000), 4)} ${pad(Math.floor(rand() * 100))}`;
  let text = [
    vendor,
    address,
    `VAT ID: ${vat}`,
    '',
    'INVOICE',
    `Invoice no.: ${invoiceNumber}        Date: ${invoiceDate}`,
    `Bill to: ${customer}`,
    '',
    'Pos Description                      Qty    Price      Amount',
    ...lines,
    '',
    `Net amount            ${net.toFixed(2)} ${currency}`,
    `VAT ${(vatRate * 100).toFixed(1)}%             ${tax.toFixed(2)} ${currency}`,
    `TOTAL                 ${total.toFixed(2)} ${currency}`,
    '',
    `Payable by ${dueDate} to IBAN ${iban}`,
  ].join('\n');
  if (opts.textBytes) {
    const terms = [
      'Goods remain our property until paid in full.',
      'Late payments bear interest of 9 percentage points above the base rate.',
      'Complaints must be made in writing within 14 days of delivery.',
      'Place of performance and jurisdiction is the seat of the supplier.',
      'Please quote the invoice number with every payment.',
    ];
    let t = 0;
    while (Buffer.byteLength(text) < opts.textBytes) text += `\n${terms[t++ % terms.length]} (${index}-${t})`;
  }
  return {
    id: `${opts.idPrefix ?? 'invoice'}-${pad(index + 1, 5)}`,
    text,
    fields: {
      invoiceNumber,
      invoiceDate,
      dueDate,
      vendorName: vendor,
      vendorVatId: vat,
      customerName: customer,
      currency,
      netAmount: net,
      taxAmount: tax,
      totalAmount: total,
      iban,
      purchaseOrder: rand() < 0.3 ? `PO-${Math.floor(rand() * 100_000)}` : null,
    },
  };
}

/** The model configuration a capture app would use for these invoices. */
export const invoiceModelConfig = {
  systemPrompt:
    'You extract fields from invoices. Answer with one JSON object holding exactly the requested fields; use null when a field is absent.',
  userPromptTemplate: 'Extract the invoice fields from this OCR text.\n\n{{text}}',
  mappedFields: ['invoiceNumber', 'invoiceDate', 'vendorName', 'totalAmount', 'currency', 'dueDate'],
};
