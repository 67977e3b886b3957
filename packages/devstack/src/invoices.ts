/**
 * Synthetic invoice documents for the demo, end-to-end tests and benchmarks: OCR-like text and the
 * validated fields a document-capture app would hold. Deterministic for a seed.
 *
 * Eight vendors, each with its own layout as real suppliers have: its language's labels (German,
 * French, Italian, English, Dutch, Spanish, American English, Swiss German), its date notation
 * (03.04.2026, 03/04/2026, 3 aprile 2026, 3 April 2026, 03-04-2026, US month-first 04/03/2026) and amount
 * notation (1.234,56 EUR, 1 234,56 €, € 1.234,56, £1,234.56, $1,234.56, CHF 1'234.55). The validated
 * fields are written one way (ISO dates, numbers). Some documents have a misread character in a value
 * (OCR errors: O for 0, l for 1, S for 5, B for 8), which the validated field does not have, and some
 * have no due date (the field is null) or a purchase order line.
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

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;

interface Day {
  y: number;
  m: number;
  d: number;
}
const iso = (t: Day) => `${t.y}-${pad(t.m)}-${pad(t.d)}`;
function addDays(t: Day, days: number): Day {
  const date = new Date(Date.UTC(t.y, t.m - 1, t.d) + days * 86_400_000);
  return { y: date.getUTCFullYear(), m: date.getUTCMonth() + 1, d: date.getUTCDate() };
}

/** Digits with a grouping character every three places and two decimals. */
function grouped(value: number, group: string, decimal: string): string {
  const [int, frac] = Math.abs(value).toFixed(2).split('.') as [string, string];
  return `${value < 0 ? '-' : ''}${int.replace(/\B(?=(\d{3})+(?!\d))/g, group)}${decimal}${frac}`;
}

const MONTHS_EN =
  'January February March April May June July August September October November December'.split(' ');
const MONTHS_IT =
  'gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre'.split(' ');

interface Layout {
  vendor: string;
  vatId: string;
  address: string;
  currency: string;
  vatRate: number;
  number: (r: () => number, t: Day) => string;
  date: (t: Day) => string;
  amount: (v: number) => string;
  /** The document's lines around the item table; `{...}` are filled in. */
  head: string[];
  itemsHeader: string;
  foot: string[];
  /** The due-date line, or the line used when there is none. */
  due: [withDate: string, without: string];
  po: string;
}

// Labels per language; {number} {date} {customer} {net} {tax} {total} {due} {po} {iban} {rate} are filled.
const LAYOUTS: Layout[] = [
  {
    vendor: 'Nordwind Logistik GmbH',
    vatId: 'DE293847561',
    address: 'Hafenstraße 12, 20457 Hamburg',
    currency: 'EUR',
    vatRate: 0.19,
    number: (r, t) => `RE-${t.y}-${pad(Math.floor(r() * 100_000), 5)}`,
    date: (t) => `${pad(t.d)}.${pad(t.m)}.${t.y}`,
    amount: (v) => `${grouped(v, '.', ',')} EUR`,
    head: [
      'USt-IdNr.: {vatId}',
      '',
      'RECHNUNG',
      'Rechnungsnr.: {number}',
      'Rechnungsdatum: {date}',
      'Kunde: {customer}',
    ],
    itemsHeader: 'Pos Bezeichnung                      Menge  Preis      Betrag',
    foot: ['Nettobetrag           {net}', 'MwSt. {rate} %          {tax}', 'Gesamtbetrag          {total}'],
    due: ['Zahlbar bis {due} auf IBAN {iban}', 'Zahlbar sofort auf IBAN {iban}'],
    po: 'Bestellnr.: {po}',
  },
  {
    vendor: 'Atelier Lumière SARL',
    vatId: 'FR40123456789',
    address: '18 rue des Lilas, 69003 Lyon',
    currency: 'EUR',
    vatRate: 0.2,
    number: (r, t) => `F${t.y}-${pad(Math.floor(r() * 10_000), 4)}`,
    date: (t) => `${pad(t.d)}/${pad(t.m)}/${t.y}`,
    amount: (v) => `${grouped(v, '\u202f', ',')} €`,
    head: ['N° TVA : {vatId}', '', 'FACTURE', 'Facture n° {number}', 'Date : {date}', 'Client : {customer}'],
    itemsHeader: 'Réf Désignation                      Qté    P.U.       Montant',
    foot: [
      'Total HT              {net}',
      'TVA {rate} %            {tax}',
      'Total TTC             {total}',
      'Devise : EUR',
    ],
    due: ['Échéance : {due}', 'Paiement à réception'],
    po: 'Bon de commande : {po}',
  },
  {
    vendor: 'Castelli Forniture S.p.A.',
    vatId: 'IT01234567890',
    address: 'Via Roma 45, 20121 Milano',
    currency: 'EUR',
    vatRate: 0.22,
    number: (r, t) => `${Math.floor(r() * 1000)}/${t.y}`,
    date: (t) => `${t.d} ${MONTHS_IT[t.m - 1]} ${t.y}`,
    amount: (v) => `€ ${grouped(v, '.', ',')}`,
    head: ['P.IVA {vatId}', '', 'FATTURA', 'Fattura n. {number} del {date}', 'Cliente: {customer}'],
    itemsHeader: 'Pos Descrizione                      Qtà    Prezzo     Importo',
    foot: [
      'Imponibile            {net}',
      'IVA {rate}%              {tax}',
      'Totale documento      {total}',
      'Valuta: EUR',
    ],
    due: ['Scadenza pagamento: {due}', 'Pagamento a vista'],
    po: 'Ordine: {po}',
  },
  {
    vendor: 'Brightline Office Supply Ltd',
    vatId: 'GB123456789',
    address: '7 King Street, Manchester M2 4LQ',
    currency: 'GBP',
    vatRate: 0.2,
    number: (r, t) => `INV-${t.y}${pad(t.m)}-${pad(Math.floor(r() * 100_000), 5)}`,
    date: (t) => `${t.d} ${MONTHS_EN[t.m - 1]} ${t.y}`,
    amount: (v) => `£${grouped(v, ',', '.')}`,
    head: [
      'VAT Reg No: {vatId}',
      '',
      'INVOICE',
      'Invoice no.: {number}        Date: {date}',
      'Bill to: {customer}',
    ],
    itemsHeader: 'Pos Description                      Qty    Price      Amount',
    foot: [
      'Subtotal              {net}',
      'VAT {rate}%               {tax}',
      'Total due             {total} GBP',
    ],
    due: ['Payment due: {due}', 'Payment due on receipt'],
    po: 'Your PO: {po}',
  },
  {
    vendor: 'Van Dijk Techniek B.V.',
    vatId: 'NL123456789B01',
    address: 'Keizersgracht 221, 1016 DV Amsterdam',
    currency: 'EUR',
    vatRate: 0.21,
    number: (r, t) => `${t.y}.${pad(Math.floor(r() * 10_000), 4)}`,
    date: (t) => `${pad(t.d)}-${pad(t.m)}-${t.y}`,
    amount: (v) => `€ ${grouped(v, '.', ',')}`,
    head: [
      'BTW-nr: {vatId}',
      '',
      'FACTUUR',
      'Factuurnummer: {number}',
      'Factuurdatum: {date}',
      'Klant: {customer}',
    ],
    itemsHeader: 'Pos Omschrijving                     Aantal Prijs      Bedrag',
    foot: ['Subtotaal             {net}', 'BTW {rate}%              {tax}', 'Totaal EUR            {total}'],
    due: ['Vervaldatum: {due}', 'Direct betalen'],
    po: 'Inkoopordernr.: {po}',
  },
  {
    vendor: 'Solara Energia S.L.',
    vatId: 'ESB12345678',
    address: 'Calle Mayor 9, 28013 Madrid',
    currency: 'EUR',
    vatRate: 0.21,
    number: (r, t) => `A-${t.y}/${pad(Math.floor(r() * 10_000), 4)}`,
    date: (t) => `${pad(t.d)}/${pad(t.m)}/${t.y}`,
    amount: (v) => `${grouped(v, '.', ',')} €`,
    head: ['CIF: {vatId}', '', 'FACTURA', 'Factura nº: {number}', 'Fecha: {date}', 'Cliente: {customer}'],
    itemsHeader: 'Pos Concepto                         Cant.  Precio     Importe',
    foot: [
      'Base imponible        {net}',
      'IVA {rate}%              {tax}',
      'TOTAL                 {total} (EUR)',
    ],
    due: ['Vencimiento: {due}', 'Pago al contado'],
    po: 'Pedido: {po}',
  },
  {
    vendor: 'Keystone Imaging Inc.',
    vatId: 'EIN 12-3456789',
    address: '410 Market Street, Philadelphia, PA 19106',
    currency: 'USD',
    vatRate: 0.08,
    number: (r) => String(100_000 + Math.floor(r() * 900_000)),
    date: (t) => `${pad(t.m)}/${pad(t.d)}/${t.y}`,
    amount: (v) => `$${grouped(v, ',', '.')}`,
    head: [
      'Tax ID: {vatId}',
      '',
      'INVOICE',
      'Invoice # {number}',
      'Invoice Date: {date}',
      'Bill To: {customer}',
    ],
    itemsHeader: 'Item Description                     Qty    Rate       Amount',
    foot: ['Subtotal              {net}', 'Sales Tax ({rate}%)      {tax}', 'Amount Due (USD)      {total}'],
    due: ['Due Date: {due}', 'Due upon receipt'],
    po: 'P.O. Number: {po}',
  },
  {
    vendor: 'Alpenblick Scan AG',
    vatId: 'CHE-123.456.789 MWST',
    address: 'Bahnhofstrasse 3, 8001 Zürich',
    currency: 'CHF',
    vatRate: 0.081,
    number: (r, t) => `R-${t.y % 100}-${pad(Math.floor(r() * 100_000), 5)}`,
    date: (t) => `${pad(t.d)}.${pad(t.m)}.${t.y}`,
    amount: (v) => `CHF ${grouped(v, "'", '.')}`,
    head: ['UID: {vatId}', '', 'Rechnung', 'Rechnung Nr. {number}', 'Datum: {date}', 'Kunde: {customer}'],
    itemsHeader: 'Pos Bezeichnung                      Menge  Preis      Betrag',
    foot: ['Zwischensumme         {net}', 'MWST {rate}%             {tax}', 'Total                 {total}'],
    due: ['Zahlbar bis: {due}', 'Zahlbar sofort'],
    po: 'Ihre Bestellung: {po}',
  },
];

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

/** Share of documents with one misread character in a labelled value. */
export const OCR_ERROR_RATE = 0.06;
const MISREADS: Record<string, string> = { '0': 'O', '1': 'l', '5': 'S', '8': 'B' };

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
  const layout = pick(rand, LAYOUTS);
  const customer = pick(rand, CUSTOMERS);
  const issued: Day = { y: 2026, m: 1 + Math.floor(rand() * 12), d: 1 + Math.floor(rand() * 28) };
  const due = rand() < 0.1 ? null : addDays(issued, pick(rand, [14, 30, 30, 45]));
  const invoiceNumber = layout.number(rand, issued);
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
  const tax = Math.round(net * layout.vatRate * 100) / 100;
  const total = Math.round((net + tax) * 100) / 100;
  const iban = `DE${pad(Math.floor(rand() * 100))} 3704 0044 0532 ${pad(Math.floor(rand() * 10_000), 4)} ${pad(Math.floor(rand() * 100))}`;
  const purchaseOrder = rand() < 0.3 ? `PO-${Math.floor(rand() * 100_000)}` : null;

  const values: Record<string, string> = {
    vatId: layout.vatId,
    number: invoiceNumber,
    date: layout.date(issued),
    customer,
    net: layout.amount(net),
    tax: layout.amount(tax),
    total: layout.amount(total),
    due: due ? layout.date(due) : '',
    po: purchaseOrder ?? '',
    iban,
    rate: String(Math.round(layout.vatRate * 1000) / 10),
  };
  // A misread character in one labelled value, as OCR makes them; the validated fields stay right.
  if (rand() < OCR_ERROR_RATE) {
    const key = pick(rand, ['number', 'date', 'total', 'due'] as const);
    const text = values[key] as string;
    const at = [...text].findIndex((ch, i) => ch in MISREADS && i >= Math.floor(rand() * text.length));
    if (at >= 0) values[key] = text.slice(0, at) + MISREADS[text[at] as string] + text.slice(at + 1);
  }
  const fill = (line: string) => line.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? '');
  let text = [
    layout.vendor,
    layout.address,
    ...layout.head.map(fill),
    ...(purchaseOrder ? [fill(layout.po)] : []),
    '',
    layout.itemsHeader,
    ...lines,
    '',
    ...layout.foot.map(fill),
    '',
    fill(due ? layout.due[0] : layout.due[1]),
    ...(layout.due[0].includes('{iban}') ? [] : [`IBAN: ${iban}`]),
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
      invoiceDate: iso(issued),
      dueDate: due ? iso(due) : null,
      vendorName: layout.vendor,
      vendorVatId: layout.vatId,
      customerName: customer,
      currency: layout.currency,
      netAmount: net,
      taxAmount: tax,
      totalAmount: total,
      iban,
      purchaseOrder,
    },
  };
}

/** The model configuration a capture app would use for these invoices. */
export const invoiceModelConfig = {
  systemPrompt:
    'You extract fields from invoices. Answer with one JSON object with exactly the keys invoiceNumber, invoiceDate, vendorName, totalAmount, currency and dueDate: dates as YYYY-MM-DD, amounts as numbers, null when a field is absent.',
  userPromptTemplate: 'Extract the invoice fields from this OCR text.\n\n{{text}}',
  mappedFields: ['invoiceNumber', 'invoiceDate', 'vendorName', 'totalAmount', 'currency', 'dueDate'],
};
