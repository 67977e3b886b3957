import { existsSync } from 'node:fs';
import type { FineTuneRequestInput } from '@tuneline/contracts';
import {
  CONTROL_CHAR_PATTERN,
  type DatasetIssue,
  findBaseModel,
  jsonMayHoldControlChar,
} from '@tuneline/dataset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { build, invoice, invoices, removedAfterAll } from './fixtures.ts';

const removeAfterAll = removedAfterAll();

async function errorsOf(docs: unknown[], over: Partial<FineTuneRequestInput> = {}) {
  const { result, store } = await build(docs, over);
  removeAfterAll(store);
  expect(result.status).toBe('invalid');
  // Nothing is left behind for an invalid dataset.
  expect(existsSync(store.storage.path('train.jsonl'))).toBe(false);
  expect(result.trainKey).toBeNull();
  return result.errors;
}

async function warningsOf(
  docs: unknown[],
  over: Partial<FineTuneRequestInput> = {},
): Promise<DatasetIssue[]> {
  const { result, store } = await build(docs, over);
  removeAfterAll(store);
  expect(result.errors).toEqual([]);
  expect(result.status).toBe('ready');
  return result.warnings;
}

describe('validation errors name the document and the field', { timeout: 120_000 }, () => {
  it('fewer than 10 usable documents', async () => {
    const errors = await errorsOf(invoices(9));
    expect(errors).toContainEqual(expect.objectContaining({ code: 'too_few_documents', field: 'documents' }));
  });

  it('training file under 10 examples after the test split', async () => {
    const errors = await errorsOf(invoices(12), { testPercent: 50 });
    expect(errors).toContainEqual(expect.objectContaining({ code: 'too_few_training_examples' }));
  });

  it('empty text', async () => {
    const docs = invoices(12);
    docs[3] = invoice(3, { text: '  \n ' });
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'empty_text', documentId: 'inv-0003', field: 'text' }),
    );
  });

  it('no fields', async () => {
    const docs = invoices(12);
    docs[4] = invoice(4, { fields: {} });
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'no_fields', documentId: 'inv-0004', field: 'fields' }),
    );
  });

  it('none of the mapped fields', async () => {
    const docs = invoices(12);
    docs[5] = invoice(5, { fields: { vendor: 'X' } });
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'no_mapped_fields_in_document',
        documentId: 'inv-0005',
        field: 'fields',
        message: expect.stringContaining('invoiceNumber, total'),
      }),
    );
  });

  it('duplicate document ids', async () => {
    const docs = invoices(12);
    docs[7] = invoice(2);
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'duplicate_document_id',
        documentId: 'inv-0002',
        field: 'id',
        index: 7,
      }),
    );
  });

  it('an example over the base model per-example token limit', async () => {
    const docs = invoices(12);
    // ~17k tokens: over gpt-3.5-turbo-0125's 16,385, fine for gpt-4o-mini.
    docs[1] = invoice(1, { text: 'word '.repeat(17_000) });
    const errors = await errorsOf(docs, { baseModel: 'gpt-3.5-turbo-0125' });
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'too_many_tokens',
        documentId: 'inv-0001',
        field: 'text',
        message: expect.stringContaining(
          `at most ${findBaseModel('gpt-3.5-turbo-0125')?.maxTokensPerExample}`,
        ),
      }),
    );
    const { result, store } = await build(docs, { baseModel: 'gpt-4o-mini-2024-07-18' });
    removeAfterAll(store);
    expect(result.errors.map((e) => e.code)).not.toContain('too_many_tokens');
  });

  it('special tokens in text and in field values', async () => {
    const docs = invoices(12);
    docs[2] = invoice(2, { text: 'Total <|endoftext|> 5' });
    docs[6] = invoice(6, { fields: { total: '<|im_start|>', invoiceNumber: '7' } });
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'special_token',
        documentId: 'inv-0002',
        field: 'text',
        message: expect.stringContaining('<|endoftext|>'),
      }),
    );
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'special_token', documentId: 'inv-0006', field: 'fields.total' }),
    );
  });

  it('control characters', async () => {
    const docs = invoices(12);
    docs[8] = invoice(8, { text: 'Total\u0000 5\u001b' });
    const errors = await errorsOf(docs);
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'control_character',
        documentId: 'inv-0008',
        field: 'text',
        message: expect.stringContaining('U+0000'),
      }),
    );
  });

  it('every control character, anywhere in the text, is reported with its code', async () => {
    const codes = [
      ...Array.from({ length: 32 }, (_, c) => c).filter((c) => c !== 9 && c !== 10 && c !== 13),
      0x7f,
    ];
    const docs = invoices(codes.length).map((d, i) => {
      const c = String.fromCharCode(codes[i] as number);
      return { ...d, text: i % 2 ? `${d.text}${c}` : `${c}${d.text}` };
    });
    const errors = (await errorsOf(docs)).filter((e) => e.code === 'control_character');
    expect(errors.map((e) => e.documentId)).toEqual(docs.map((d) => d.id));
    for (const [i, c] of codes.entries()) {
      expect(errors[i]?.message).toContain(`U+${c.toString(16).toUpperCase().padStart(4, '0')}`);
    }
  });

  it('backslashes, escapes spelled out and lone surrogates are not control characters', async () => {
    const docs = invoices(12).map((d, i) => ({
      ...d,
      text: `${d.text} ${['C:\\bin\\file', '\\u0001 \\b \\f', 'lone \ud800 high', '"quoted"'][i % 4]}`,
    }));
    await warningsOf(docs);
  });

  it('jsonMayHoldControlChar is true whenever the encoded text holds a control character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        if (CONTROL_CHAR_PATTERN.test(s)) expect(jsonMayHoldControlChar(JSON.stringify(s))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
    expect(jsonMayHoldControlChar(JSON.stringify('plain\ttext\nwith "quotes" and \\ backslashes'))).toBe(
      false,
    );
  });

  it('tabs and newlines are not control-character errors', async () => {
    const docs = invoices(12).map((d) => ({ ...d, text: `${d.text}\t\r\n` }));
    await warningsOf(docs);
  });

  it('unknown base model', async () => {
    const errors = await errorsOf(invoices(12), { baseModel: 'gpt-9-turbo' });
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'unknown_base_model', field: 'baseModel' }),
    );
  });

  it('base model that cannot be fine-tuned', async () => {
    const errors = await errorsOf(invoices(12), { baseModel: 'gpt-4o-2024-05-13' });
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'base_model_not_fine_tunable', field: 'baseModel' }),
    );
  });

  it('a malformed document (from a file) is reported by position', async () => {
    const errors = await errorsOf([...invoices(12), { id: 'x', fields: {} }]);
    expect(errors).toContainEqual(expect.objectContaining({ code: 'invalid_document', index: 12 }));
  });

  it('dump "mapped" without mapped fields', async () => {
    const errors = await errorsOf(invoices(12), {
      modelConfig: { systemPrompt: 's', userPromptTemplate: '{{text}}', mappedFields: [] },
    });
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 'no_mapped_fields', field: 'modelConfig.mappedFields' }),
    );
  });

  it('caps the stored errors and says how many more there were', async () => {
    const docs = invoices(300).map((d) => ({ ...d, text: '' }));
    const errors = await errorsOf(docs);
    expect(errors.length).toBe(201); // 300 empty texts + too few documents: 200 kept
    expect(errors.at(-1)).toMatchObject({ code: 'more_issues', count: 101 });
  });
});

describe('warnings are kept on a ready dataset', { timeout: 120_000 }, () => {
  it('fewer than 50 documents', async () => {
    expect(await warningsOf(invoices(49))).toContainEqual(
      expect.objectContaining({ code: 'few_documents', count: 49 }),
    );
    expect((await warningsOf(invoices(50))).map((w) => w.code)).not.toContain('few_documents');
  });

  it('a mapped field empty in more than 20% of documents', async () => {
    const docs = invoices(60).map((d, i) => (i % 4 === 0 ? { ...d, fields: { ...d.fields, total: '' } } : d));
    expect(await warningsOf(docs)).toContainEqual(
      expect.objectContaining({ code: 'mapped_field_often_empty', field: 'fields.total', count: 15 }),
    );
    const few = invoices(60).map((d, i) =>
      i % 10 === 0 ? { ...d, fields: { ...d.fields, total: null } } : d,
    );
    expect((await warningsOf(few)).map((w) => w.code)).not.toContain('mapped_field_often_empty');
  });

  it('duplicate examples', async () => {
    const docs = invoices(60);
    docs[10] = { ...docs[3], id: 'copy-of-3' } as never;
    const { result, store } = await build(docs, {
      modelConfig: { systemPrompt: 's', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
    });
    removeAfterAll(store);
    expect(result.warnings).toContainEqual(
      expect.objectContaining({ code: 'duplicate_examples', count: 1, documentIds: ['copy-of-3'] }),
    );
  });

  it('duplicate examples are exactly the lines that repeat an earlier line, in file order', async () => {
    // Same-length texts with the same answer (sharing the cheap pre-check key) that differ, exact
    // copies, a copy with another answer, and copies that differ only in an unmapped field.
    const base = invoices(60);
    const docs = base.map((d, i) => {
      const twin = base[i % 7] as (typeof base)[number];
      if (i % 5 === 1) return { ...twin, id: `dup-${i}`, fields: { ...twin.fields, vendor: `other ${i}` } };
      if (i % 5 === 2)
        return { ...twin, id: `near-${i}`, text: twin.text.replace(/.$/, (c) => (c === 'X' ? 'Y' : 'X')) };
      if (i % 5 === 3)
        return { ...twin, id: `other-answer-${i}`, fields: { ...twin.fields, total: `${i}.00` } };
      return d;
    });
    const { result, store } = await build(docs, {
      modelConfig: { systemPrompt: 's', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
    });
    removeAfterAll(store);
    expect(result.status).toBe('ready');
    const lines = store.read('train.jsonl').split('\n').filter(Boolean);
    const seen = new Set<string>();
    const repeated: string[] = [];
    lines.forEach((line, i) => {
      if (seen.has(line)) repeated.push(docs[i]?.id as string);
      seen.add(line);
    });
    expect(repeated.length).toBeGreaterThan(5);
    expect(result.warnings.find((w) => w.code === 'duplicate_examples')).toMatchObject({
      count: repeated.length,
      documentIds: repeated.slice(0, 20),
    });
  });

  it('token-length outliers', async () => {
    const docs = invoices(60);
    docs[20] = invoice(20, { text: `${docs[20]?.text}\n${'Line item 1 x widget 3.00 EUR\n'.repeat(200)}` });
    expect(await warningsOf(docs)).toContainEqual(
      expect.objectContaining({ code: 'token_length_outliers', count: 1, documentIds: ['inv-0020'] }),
    );
    expect((await warningsOf(invoices(60))).map((w) => w.code)).not.toContain('token_length_outliers');
  });
});
