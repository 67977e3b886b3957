// The dataset benches' input: synthetic invoices with ~3 KB of OCR-like text each, deterministic and
// cheap to make, and the request settings they are built with.
import { fineTuneRequestSchema } from '@tuneline/contracts';
import type { DatasetSettings } from '@tuneline/dataset';
import { seededRandom } from '@tuneline/devstack';

const WORDS =
  'invoice rechnung delivery note order quantity unit price amount net gross vat tax total due date payment terms bank iban bic account customer supplier address street city postal code country phone fax email website reference number item description widget bolt screw nut washer cable connector adapter module sensor controller housing bracket panel frame motor pump valve filter hose clamp seal gasket bearing shaft gear belt chain spring lever switch relay fuse breaker socket plug lamp battery charger service maintenance repair inspection installation transport shipping handling discount surcharge deposit credit balance page of carried forward subtotal'.split(
    ' ',
  );
const CITIES = [
  'Berlin',
  'München',
  'Hamburg',
  'Köln',
  'Lyon',
  'Milano',
  'Wien',
  'Zürich',
  'Rotterdam',
  'Praha',
];

/** A pool of OCR-ish lines (with noise), so each document is cheap to assemble yet varied. */
function linePool(size: number): string[] {
  const rnd = seededRandom(42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const noise = (w: string) => {
    if (rnd() > 0.06 || w.length < 3) return w;
    const i = Math.floor(rnd() * w.length);
    return w.slice(0, i) + pick(['0', 'l', '1', 'rn', '.', 'é', 'ß']) + w.slice(i + 1);
  };
  const lines: string[] = [];
  for (let i = 0; i < size; i++) {
    const words = Array.from({ length: 3 + Math.floor(rnd() * 6) }, () => noise(pick(WORDS)));
    const qty = 1 + Math.floor(rnd() * 99);
    const price = (rnd() * 900).toFixed(2);
    lines.push(
      `${String(i % 97).padStart(3, '0')} ${words.join(' ')}  ${qty} x ${price} EUR  ${(qty * Number(price)).toFixed(2)}${rnd() < 0.1 ? ` ${pick(CITIES)}` : ''}`,
    );
  }
  return lines;
}

export interface SyntheticDoc {
  id: string;
  text: string;
  fields: Record<string, string>;
}

const POOL = linePool(20_000);
const BODY_COUNT = 2_000;

/** Item blocks of ~42 pool lines; documents combine a block with their own header and totals. */
const BODIES: string[] = (() => {
  const rnd = seededRandom(7);
  return Array.from({ length: BODY_COUNT }, () =>
    Array.from({ length: 42 }, () => POOL[Math.floor(rnd() * POOL.length)] as string).join('\n'),
  );
})();

/** Document i: a unique header, an item block, unique totals. Deterministic and cheap to make. */
export function* invoices(n: number): Generator<SyntheticDoc> {
  for (let i = 0; i < n; i++) {
    const number = `INV-${2024_000_000 + i}`;
    const date = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
    const vendor = `${CITIES[i % CITIES.length]} Industriebedarf GmbH`;
    const total = `${(i * 7919) % 50_000}.${String(i % 100).padStart(2, '0')}`;
    const text = `RECHNUNG / INVOICE ${number}\nDatum: ${date}\n${vendor}\nUSt-IdNr DE${100_000_000 + i}\n${BODIES[(i * 7919) % BODY_COUNT]}\nSumme netto ${total} EUR\nGesamtbetrag ${total} EUR\nZahlbar bis ${date}`;
    yield {
      id: `doc-${i}`,
      text,
      fields: {
        invoiceNumber: number,
        date,
        vendor,
        total,
        currency: 'EUR',
        iban: `DE${String(i).padStart(20, '0')}`,
      },
    };
  }
}

/** The request the benches build: five mapped fields, a 10% testing split, gpt-4o-mini. */
export const settings: DatasetSettings = (() => {
  const { documents: _d, ...rest } = fineTuneRequestSchema.parse({
    requestId: 'bench',
    licenseId: 'bench',
    documents: Array.from({ length: 10 }, (_, i) => ({ id: `x${i}`, text: 'x', fields: { a: 1 } })),
    modelConfig: {
      systemPrompt: 'You extract invoice fields from OCR text and answer with one JSON object.',
      userPromptTemplate: 'Document {{documentId}}:\n\n{{text}}',
      mappedFields: ['invoiceNumber', 'date', 'vendor', 'total', 'currency'],
    },
    testPercent: 10,
    baseModel: 'gpt-4o-mini-2024-07-18',
  });
  return rest;
})();
