import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Document, FineTuneRequest, FineTuneRequestInput } from '@tuneline/contracts';
import { fineTuneRequestSchema } from '@tuneline/contracts';
import { buildDataset, type DatasetIssue, type DatasetSettings, LocalFileStorage } from '@tuneline/dataset';
import { afterAll, expect } from 'vitest';

/** A small invoice: deterministic content per index. */
export function invoice(i: number, extra: Partial<Document> = {}): Document {
  return {
    id: `inv-${String(i).padStart(4, '0')}`,
    text: `INVOICE ${1000 + i}\nACME Supplies GmbH, Hauptstraße ${i % 40}\nDate: 2024-03-${String((i % 28) + 1).padStart(2, '0')}\nNet: ${i * 10}.00 EUR\nVAT 19%: ${(i * 1.9).toFixed(2)} EUR\nTotal: ${(i * 11.9).toFixed(2)} EUR`,
    fields: {
      invoiceNumber: String(1000 + i),
      total: (i * 11.9).toFixed(2),
      vendor: 'ACME Supplies GmbH',
      date: `2024-03-${String((i % 28) + 1).padStart(2, '0')}`,
    },
    ...extra,
  };
}

export function invoices(n: number, from = 0): Document[] {
  return Array.from({ length: n }, (_, k) => invoice(from + k));
}

export function requestInput(over: Partial<FineTuneRequestInput> = {}): FineTuneRequestInput {
  return {
    requestId: 'req-1',
    licenseId: 'lic-1',
    documents: invoices(60),
    modelConfig: {
      systemPrompt: 'You extract invoice fields and answer with JSON.',
      userPromptTemplate: 'Document {{documentId}}:\n{{text}}',
      mappedFields: ['invoiceNumber', 'total'],
    },
    dump: 'mapped',
    testPercent: 0,
    baseModel: 'gpt-4o-mini-2024-07-18',
    autoTrain: false,
    ...over,
  };
}

export function request(over: Partial<FineTuneRequestInput> = {}): FineTuneRequest {
  return fineTuneRequestSchema.parse(requestInput(over));
}

/** Settings (no documents) with defaults applied, for direct builder calls. */
export function settings(over: Partial<FineTuneRequestInput> = {}): DatasetSettings {
  const { documents: _d, ...rest } = request(over);
  return rest;
}

export interface TempStorage {
  dir: string;
  storage: LocalFileStorage;
  read(key: string): string;
  cleanup(): void;
}

export function tempStorage(): TempStorage {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-dataset-'));
  const storage = new LocalFileStorage(dir);
  return {
    dir,
    storage,
    read: (key) => readFileSync(storage.path(key), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * For a test file's top level: removes, after the file's tests, every temporary storage handed to the
 * function it returns.
 */
export function removedAfterAll(): (...stores: TempStorage[]) => void {
  const stores: TempStorage[] = [];
  afterAll(() => {
    for (const s of stores) s.cleanup();
  });
  return (...more) => {
    stores.push(...more);
  };
}

/** Builds with documents given as an array (both passes read it). */
export async function build(
  docs: unknown[],
  over: Partial<FineTuneRequestInput> = {},
  store: TempStorage = tempStorage(),
) {
  const result = await buildDataset(settings(over), () => docs, {
    storage: store.storage,
    trainKey: 'train.jsonl',
    testKey: 'test.jsonl',
  });
  return { result, store };
}

export function jsonl(text: string): { messages: { role: string; content: string }[] }[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** A model configuration whose user prompt is the text alone: a copy under another id repeats exactly. */
export const TEXT_ONLY_PROMPT = {
  systemPrompt: 's',
  userPromptTemplate: '{{text}}',
  mappedFields: ['total'],
};

/** The document with 200 more item lines: far longer in tokens than the fixture's other invoices. */
export function longer(doc: Document): Document {
  return { ...doc, text: `${doc.text}\n${'Line item 1 x widget 3.00 EUR\n'.repeat(200)}` };
}

/**
 * 61 invoices with one token-length outlier (inv-0020) and, with TEXT_ONLY_PROMPT, one exact repeat
 * (copy-of-3, last).
 */
export function invoicesWithRepeatAndOutlier(): Document[] {
  const docs = invoices(60);
  docs[20] = longer(invoice(20));
  docs.push({ ...invoice(3), id: 'copy-of-3' });
  return docs;
}

/** The warnings both checkers compute over a set of examples (example-warnings.ts). */
export const EXAMPLE_WARNING_CODES = ['duplicate_examples', 'token_length_outliers'];

/**
 * The builder's and the file validator's example warnings agree: the same codes, counts and messages,
 * and the documents the builder names are those at the lines the validator names (`trainIds[k]` is the
 * document of line k + 1 of the training file). Returns the builder's, to check they are not empty.
 */
export function expectSameExampleWarnings(
  built: DatasetIssue[],
  validated: DatasetIssue[],
  trainIds: readonly string[],
): DatasetIssue[] {
  const ours = (ws: DatasetIssue[]) => ws.filter((w) => EXAMPLE_WARNING_CODES.includes(w.code));
  const fromBuild = ours(built);
  expect(fromBuild.every((w) => w.lines === undefined && w.documentIds !== undefined)).toBe(true);
  const fromFile = ours(validated).map(({ lines, ...w }) => {
    expect(lines).toBeDefined();
    return { ...w, documentIds: lines?.map((line) => trainIds[line - 1]) };
  });
  expect(fromFile).toEqual(fromBuild);
  return fromBuild;
}
