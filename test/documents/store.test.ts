import { MAX_DOCUMENT_BATCH, MAX_DOCUMENT_BATCH_BYTES } from '@tuneline/contracts';
import { findDocument, readStoredDocuments } from '@tuneline/db';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import type { AnyJson } from '../api/support.ts';
import { type ApiCall, type ApiUnderTest, startApi } from '../support/api-app.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

let t: TestDatabase;
let api: ApiUnderTest;
let a: { id: string; key: string };
let b: { id: string; key: string };

const call: ApiCall = (...args) => api.call(...args);

const doc = (id: string, total: number, configuration = 'invoices') => ({
  configuration,
  id,
  text: `INVOICE ${id}\nTotal: ${total}.00 EUR`,
  fields: { invoiceNumber: id, total },
});

test.beforeAll(async ({ database, prefix }) => {
  t = database;
  api = await startApi(t.db, prefix);
  a = await makeLicense(t.db, 'docs-a');
  b = await makeLicense(t.db, 'docs-b');
});

afterAll(async () => {
  await api?.close();
});

describe('POST /v1/documents', () => {
  it('creates new documents, ignores an identical re-send and makes changed content a new revision', async () => {
    const first = await call('POST', '/v1/documents', a.key, { documents: [doc('d1', 10), doc('d2', 20)] });
    expect(first.status).toBe(200);
    expect(first.json.counts).toEqual({ created: 2, revised: 0, unchanged: 0, invalid: 0 });
    const before = await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'd1' });

    // Same content with the keys in another order: a no-op, not even updated_at moves.
    const again = await call('POST', '/v1/documents', a.key, {
      documents: [
        {
          fields: { total: 10, invoiceNumber: 'd1' },
          text: doc('d1', 10).text,
          id: 'd1',
          configuration: 'invoices',
        },
      ],
    });
    expect(again.json.results[0]).toMatchObject({ status: 'unchanged', revision: 1 });
    const after = await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'd1' });
    expect(after?.updatedAt).toEqual(before?.updatedAt);
    expect(after?.changeSeq).toBe(before?.changeSeq);

    const changed = await call('POST', '/v1/documents', a.key, { documents: [doc('d1', 11)] });
    expect(changed.json.results[0]).toMatchObject({ status: 'revised', revision: 2 });
    const latest = await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'd1' });
    expect(latest?.fields).toEqual({ invoiceNumber: 'd1', total: 11 });
    expect(BigInt(latest?.changeSeq ?? 0)).toBeGreaterThan(BigInt(before?.changeSeq ?? 0));
  });

  it('keeps the good items of a batch and answers 207 with an error per bad item, naming its field', async () => {
    const res = await call('POST', '/v1/documents', a.key, {
      documents: [
        doc('g1', 1),
        { configuration: 'invoices', id: 'bad-text', text: 5, fields: {} },
        { configuration: 'in voices', id: 'bad-config', text: 'x', fields: {} },
        { ...doc('typo', 2), field: {} },
        'not an object',
        doc('g2', 2),
      ],
    });
    expect(res.status).toBe(207);
    expect(res.json.counts).toEqual({ created: 2, revised: 0, unchanged: 0, invalid: 4 });
    const bad = res.json.results.filter((r: AnyJson) => r.status === 'invalid');
    expect(bad.map((r: AnyJson) => r.index)).toEqual([1, 2, 3, 4]);
    expect(bad[0].errors[0].field).toBe('documents[1].text');
    expect(bad[0].id).toBe('bad-text');
    expect(bad[1].errors[0].field).toBe('documents[2].configuration');
    expect(bad[2].errors[0].message).toMatch(/field/);
    expect(bad[3].errors[0].field).toBe('documents[4]');
    expect(await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'g2' })).toBeDefined();
    expect(
      await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'bad-text' }),
    ).toBeUndefined();
  });

  it('stores a key repeated with the same content once, and refuses a repeat with other content', async () => {
    const res = await call('POST', '/v1/documents', a.key, {
      documents: [doc('r1', 1), doc('r1', 1), doc('r2', 1), doc('r2', 2)],
    });
    expect(res.status).toBe(207);
    expect(res.json.results.map((r: AnyJson) => r.status)).toEqual([
      'created',
      'unchanged',
      'created',
      'invalid',
    ]);
    expect(res.json.results[3].errors[0]).toEqual({
      field: 'documents[3].id',
      message: 'documents[2] has the same configuration and id with different content',
    });
  });

  it('refuses a malformed batch as a whole with 400 naming the field, and stores nothing', async () => {
    const empty = await call('POST', '/v1/documents', a.key, { documents: [] });
    expect(empty.status).toBe(400);
    expect(empty.json.error.fields[0].field).toBe('documents');
    const tooMany = await call('POST', '/v1/documents', a.key, {
      documents: Array.from({ length: MAX_DOCUMENT_BATCH + 1 }, (_, i) => doc(`many-${i}`, i)),
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.error.message).toContain(`at most ${MAX_DOCUMENT_BATCH}`);
    const extra = await call('POST', '/v1/documents', a.key, {
      documents: [doc('x', 1)],
      licenseId: 'docs-b',
    });
    expect(extra.status).toBe(400);
    expect(
      await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'many-0' }),
    ).toBeUndefined();
  });

  it('accepts a full batch of 1,000 documents under the byte limit and refuses a body over it with 413', async () => {
    // 1,000 documents of ~12 KB: about 12 MB, under the 16 MB limit.
    const filler = 'x'.repeat(12_000);
    const full = Array.from({ length: MAX_DOCUMENT_BATCH }, (_, i) => ({
      ...doc(`full-${i}`, i),
      text: `${filler}${i}`,
    }));
    const res = await call('POST', '/v1/documents', a.key, { documents: full });
    expect(res.status).toBe(200);
    expect(res.json.counts.created).toBe(MAX_DOCUMENT_BATCH);

    const big = 'y'.repeat(Math.ceil(MAX_DOCUMENT_BATCH_BYTES / 100));
    const over = Array.from({ length: 101 }, (_, i) => ({ ...doc(`over-${i}`, i), text: big }));
    const refused = await call('POST', '/v1/documents', a.key, { documents: over });
    expect(refused.status).toBe(413);
    expect(
      await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'over-0' }),
    ).toBeUndefined();
  });

  it('keeps licenses apart: the same key in two licenses is two documents', async () => {
    await call('POST', '/v1/documents', b.key, { documents: [doc('d1', 99)] });
    const mine = await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'd1' });
    const theirs = await findDocument(t.db, { licenseId: b.id, configuration: 'invoices', id: 'd1' });
    expect(mine?.fields).toEqual({ invoiceNumber: 'd1', total: 11 });
    expect(theirs?.fields).toEqual({ invoiceNumber: 'd1', total: 99 });
  });
});

describe('DELETE /v1/documents/:configuration/:documentId', () => {
  it('erases the text and fields, keeps a tombstone, and a re-send brings the document back as a new revision', async () => {
    await call('POST', '/v1/documents', a.key, { documents: [doc('gdpr', 5)] });
    const del = await call('DELETE', '/v1/documents/invoices/gdpr', a.key);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ configuration: 'invoices', id: 'gdpr', alreadyDeleted: false });
    const tomb = await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'gdpr' });
    expect(tomb).toMatchObject({ text: '', fields: {}, contentHash: '' });
    expect(tomb?.deletedAt).toBeInstanceOf(Date);

    expect((await call('DELETE', '/v1/documents/invoices/gdpr', a.key)).json.alreadyDeleted).toBe(true);
    const back = await call('POST', '/v1/documents', a.key, { documents: [doc('gdpr', 5)] });
    expect(back.json.results[0]).toMatchObject({ status: 'revised', revision: 2 });
    expect(
      (await findDocument(t.db, { licenseId: a.id, configuration: 'invoices', id: 'gdpr' }))?.deletedAt,
    ).toBeNull();
  });

  it("answers 404 for an unknown document and for another license's", async () => {
    expect((await call('DELETE', '/v1/documents/invoices/never-sent', a.key)).status).toBe(404);
    await call('POST', '/v1/documents', b.key, { documents: [doc('only-b', 1)] });
    expect((await call('DELETE', '/v1/documents/invoices/only-b', a.key)).status).toBe(404);
    expect(
      (await findDocument(t.db, { licenseId: b.id, configuration: 'invoices', id: 'only-b' }))?.deletedAt,
    ).toBeNull();
  });
});

describe('GET /v1/documents', () => {
  it('summarises the store per configuration', async () => {
    await call('POST', '/v1/documents', a.key, {
      documents: [doc('r1', 1, 'receipts'), doc('r2', 1, 'receipts')],
    });
    await call('DELETE', '/v1/documents/receipts/r2', a.key);
    const res = await call('GET', '/v1/documents', a.key);
    expect(res.status).toBe(200);
    const receipts = res.json.configurations.find((c: AnyJson) => c.configuration === 'receipts');
    expect(receipts).toMatchObject({ configuration: 'receipts', documents: 1, deleted: 1 });
  });
});

describe('readStoredDocuments', () => {
  it('reads every live document of one configuration once, in id order, across pages', async () => {
    const docs = Array.from({ length: 25 }, (_, i) => doc(`p-${String(i).padStart(2, '0')}`, i, 'paged'));
    await call('POST', '/v1/documents', a.key, { documents: docs });
    await call('DELETE', '/v1/documents/paged/p-07', a.key);
    await call('POST', '/v1/documents', b.key, { documents: [doc('p-99', 1, 'paged')] });
    const read: string[] = [];
    for await (const d of readStoredDocuments(t.db, { licenseId: a.id, configuration: 'paged' }, 4))
      read.push(d.id);
    expect(read).toEqual(docs.map((d) => d.id).filter((id) => id !== 'p-07'));
  });
});
