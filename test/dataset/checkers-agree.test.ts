import { createReadStream } from 'node:fs';
import type { Document } from '@tuneline/contracts';
import { EXAMPLES_NAMED, validateChatFile } from '@tuneline/dataset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  build,
  expectSameExampleWarnings,
  invoice,
  invoices,
  longer,
  removedAfterAll,
  TEXT_ONLY_PROMPT,
} from './fixtures.ts';

const removeAfterAll = removedAfterAll();

// The user prompt is the text alone, so a copy of a document under another id is an exact repeat.
const settings = { modelConfig: TEXT_ONLY_PROMPT, testPercent: 0 };

/** Builds `docs` (all valid, no testing file), validates the training file, compares the warnings. */
async function buildAndValidate(docs: Document[]) {
  const { result, store } = await build(docs, settings);
  removeAfterAll(store);
  expect(result.status).toBe('ready');
  const validated = await validateChatFile(createReadStream(store.storage.path('train.jsonl')), {
    model: 'gpt-4o-mini-2024-07-18',
  });
  const shared = expectSameExampleWarnings(
    result.warnings,
    validated.warnings,
    docs.map((d) => d.id),
  );
  return { shared, lines: store.read('train.jsonl').split('\n').filter(Boolean) };
}

describe('the builder and the file validator report the same example warnings', { timeout: 120_000 }, () => {
  it('duplicates and outliers: same counts, messages, and examples named', async () => {
    const docs = invoices(60);
    docs[20] = longer(invoice(20));
    docs.push({ ...(docs[3] as Document), id: 'copy-of-3' }, { ...(docs[20] as Document), id: 'copy-of-20' });
    const { shared } = await buildAndValidate(docs);
    expect(shared).toEqual([
      {
        code: 'duplicate_examples',
        count: 2,
        documentIds: ['copy-of-3', 'copy-of-20'],
        message: '2 examples repeat an earlier example exactly',
      },
      {
        code: 'token_length_outliers',
        count: 2,
        documentIds: ['inv-0020', 'copy-of-20'],
        message: expect.stringMatching(/^2 examples are unusually short or long in tokens \(median \d+\)$/),
      },
    ]);
  });

  it(`more repeats than a warning names: both count all and name the first ${EXAMPLES_NAMED}`, async () => {
    const docs = invoices(60);
    for (let i = 0; i < 30; i++) docs.push({ ...(docs[i] as Document), id: `copy-${i}` });
    const { shared } = await buildAndValidate(docs);
    expect(shared).toEqual([
      expect.objectContaining({
        code: 'duplicate_examples',
        count: 30,
        documentIds: Array.from({ length: EXAMPLES_NAMED }, (_, i) => `copy-${i}`),
      }),
    ]);
  });

  it('any mix of copies, long and short documents', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 39 }), { maxLength: 25 }),
        fc.uniqueArray(fc.nat({ max: 39 }), { maxLength: 4 }),
        fc.uniqueArray(fc.nat({ max: 39 }), { maxLength: 4 }),
        async (copied, long, short) => {
          const docs = invoices(40).map((d, i) =>
            long.includes(i) ? longer(d) : short.includes(i) ? { ...d, text: 'Total 1' } : d,
          );
          for (const [n, i] of copied.entries()) docs.push({ ...(docs[i] as Document), id: `copy-${n}` });
          const { shared, lines } = await buildAndValidate(docs);
          // The repeats both report are the lines that do repeat an earlier line of the file.
          const repeats = lines.filter((line, i) => lines.indexOf(line) < i).length;
          expect(shared.find((w) => w.code === 'duplicate_examples')?.count ?? 0).toBe(repeats);
        },
      ),
      { numRuns: 25 },
    );
  });
});
