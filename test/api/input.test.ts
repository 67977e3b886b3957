import { buildApi } from '@tuneline/api';
import { FineTuneRequestProducer } from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import { auditLedger, getBalance, MAX_GRANT_CREDITS } from '@tuneline/ledger';
import { createRedis } from '@tuneline/runtime';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix } from '../support/context.ts';
import { makeDataset, makeLicense } from './fixtures.ts';

/**
 * Hostile input (issue 16.8, 16.10): each gets a 400 naming the field, never a 500 and never a
 * silent default; the queue producer (same schema) refuses the same requests.
 */

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON
type AnyJson = any;

const ADMIN_KEY = 'admin-key-for-input-tests-0123456789';

let t: TestDatabase;
let redis: Redis;
let prefix: string;
let app: Awaited<ReturnType<typeof buildApi>>;
let producer: FineTuneRequestProducer;
let lic: { id: string; key: string };

async function post(url: string, key: string, payload: unknown) {
  const res = await app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  let json: AnyJson;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json };
}

const fieldsOf = (json: AnyJson): string[] =>
  (json?.error?.fields ?? []).map((f: { field: string }) => f.field);

function request(requestId: string, over: Record<string, unknown> = {}) {
  return {
    requestId,
    documents: Array.from({ length: 12 }, (_, i) => ({
      id: `inv-${i}`,
      text: `INVOICE ${1000 + i}\nTotal: ${(i + 1) * 10}.00 EUR`,
      fields: { invoiceNumber: `${1000 + i}`, total: (i + 1) * 10 },
    })),
    modelConfig: { systemPrompt: 'Extract fields as JSON.', userPromptTemplate: 'Document:\n{{text}}' },
    baseModel: 'gpt-4o-mini-2024-07-18',
    ...over,
  };
}

beforeAll(async () => {
  t = await createTestDatabase();
  redis = createRedis(redisUrl(), 'producer');
  prefix = testPrefix();
  app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: prefix,
    catalogue: defaultCatalogue,
    adminKey: ADMIN_KEY,
  });
  producer = new FineTuneRequestProducer({ connection: redis, prefix });
  lic = await makeLicense(t.db, 'lic-input');
});

afterAll(async () => {
  await producer?.close();
  await app?.close();
  redis?.disconnect();
  await t?.drop();
});

describe('admin credit grants beyond the range (16.8)', () => {
  it.each([
    ['a decimal string beyond bigint', '9223372036854775808'],
    ['a decimal string of 40 digits', '1'.repeat(40)],
    ['a string just above the maximum', (MAX_GRANT_CREDITS + 1n).toString()],
    ['a number above the maximum', 1e16],
    ['a number beyond safe integers', 1e300],
    ['zero', 0],
    ['a fraction', 2.5],
  ])('answers 400 naming amount with the allowed range for %s', async (_what, amount) => {
    const res = await post(`/v1/admin/licenses/${lic.id}/credits`, ADMIN_KEY, { grantId: 'huge', amount });
    expect(res.status).toBe(400);
    expect(fieldsOf(res.json)).toEqual(['amount']);
    expect(res.json.error.fields[0].message).toBe(
      `must be a whole number of credits from 1 to ${MAX_GRANT_CREDITS}`,
    );
  });

  it('still grants the maximum itself, and the ledger stays clean', async () => {
    const before = await getBalance(t.db, lic.id);
    const res = await post(`/v1/admin/licenses/${lic.id}/credits`, ADMIN_KEY, {
      grantId: 'max',
      amount: MAX_GRANT_CREDITS.toString(),
    });
    expect(res.status).toBe(200);
    expect(BigInt(res.json.available)).toBe(before.available + MAX_GRANT_CREDITS);
    expect(await auditLedger(t.db)).toEqual({ violations: [] });
  });
});

describe('unknown keys are errors everywhere (16.10)', () => {
  it('refuses a typo inside job, documents and modelConfig of a fine-tune request', async () => {
    const res = await post(
      '/v1/fine-tune-requests',
      lic.key,
      request('typo-1', {
        job: { description: 'x', n_epoch: 3 },
        modelConfig: { systemPrompt: 's', userPromptTemplate: '{{text}}', mapedFields: ['total'] },
      }),
    );
    expect(res.status).toBe(400);
    expect(fieldsOf(res.json).sort()).toEqual(['job.n_epoch', 'modelConfig.mapedFields']);
    expect(res.json.error.message).toContain('job.n_epoch: Unrecognized key "n_epoch"');

    const doc = request('typo-2');
    (doc.documents[2] as Record<string, unknown>).feilds = {};
    const docRes = await post('/v1/fine-tune-requests', lic.key, doc);
    expect(docRes.status).toBe(400);
    expect(fieldsOf(docRes.json)).toEqual(['documents[2].feilds']);

    const queued = await producer.enqueue({
      ...request('typo-3'),
      licenseId: lic.id,
      job: { n_epoch: 3 } as never,
    });
    expect(queued.ok).toBe(false);
    if (!queued.ok) expect(queued.errors.map((e) => e.field)).toEqual(['job.n_epoch']);
  });

  it('refuses unknown keys in the create-fine-tune body and leaves no fine-tune behind', async () => {
    const datasetId = await makeDataset(t.db, lic.id, 'uploaded');
    for (const [body, field] of [
      [{ n_epochs: 10 }, 'n_epochs'],
      [{ hyperparameters: { n_epoch: 10 } }, 'hyperparameters.n_epoch'],
      [{ descripton: 'typo' }, 'descripton'],
    ] as const) {
      const res = await post(`/v1/datasets/${datasetId}/fine-tunes`, lic.key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(fieldsOf(res.json)).toEqual([field]);
    }
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select('id')
      .where('dataset_id', '=', datasetId)
      .execute();
    expect(rows).toEqual([]);
  });

  it('refuses unknown keys in the admin bodies', async () => {
    const license = await post('/v1/admin/licenses', ADMIN_KEY, { id: 'lic-typo', name: 'x', nmae: 'y' });
    expect(license.status).toBe(400);
    expect(fieldsOf(license.json)).toEqual(['nmae']);
    const grant = await post(`/v1/admin/licenses/${lic.id}/credits`, ADMIN_KEY, {
      grantId: 'typo',
      amount: 5,
      mmeo: 'x',
    });
    expect(grant.status).toBe(400);
    expect(fieldsOf(grant.json)).toEqual(['mmeo']);
  });
});
