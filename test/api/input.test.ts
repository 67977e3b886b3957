import { buildApi } from '@tuneline/api';
import {
  FineTuneRequestProducer,
  fineTuneRequestMessage,
  MAX_FIELD_DEPTH,
  nestsDeeperThan,
  queues,
} from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import { auditLedger, getBalance, MAX_GRANT_CREDITS } from '@tuneline/ledger';
import { createRedis } from '@tuneline/runtime';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, type TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { makeDataset, makeLicense } from './fixtures.ts';

/**
 * Hostile input (issue 16.7, 16.8, 16.10): each gets a 400 naming the field, never a 500 and never a
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

/** `levels` arrays nested in each other around a number, as raw JSON text (no recursion to build it). */
const nestedArrays = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

/** A request whose document 3 has a `total` nested `levels` deep, as the JSON text a client sends. */
function deepRequestText(requestId: string, levels: number): string {
  const marker = '"__DEEP__"';
  const body = request(requestId);
  (body.documents[3] as { fields: Record<string, unknown> }).fields.total = '__DEEP__';
  return JSON.stringify({ ...body, licenseId: lic.id }).replace(marker, nestedArrays(levels));
}

async function jobsInQueue(): Promise<number> {
  const queue = new Queue(queues['fine-tune-requests'].name, { connection: redis, prefix });
  try {
    return (await queue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed')).waiting ?? 0;
  } finally {
    await queue.close();
  }
}

test.beforeAll(async ({ database, prefix: ownPrefix }) => {
  t = database;
  redis = createRedis(redisUrl(), 'producer');
  prefix = ownPrefix;
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
});

describe('deeply nested document fields (16.7)', () => {
  it('answers 400 naming the field for 5,000 levels (a 12 KB body), over HTTP and through the producer', async () => {
    const text = deepRequestText('deep-1', 5_000);
    expect(text.length).toBeLessThan(13_000);
    const res = await post('/v1/fine-tune-requests', lic.key, text);
    expect(res.status).toBe(400);
    expect(fieldsOf(res.json)).toEqual(['documents[3].fields.total']);
    expect(res.json.error.message).toContain(`deeper than ${MAX_FIELD_DEPTH} levels`);

    const queued = await producer.enqueue(JSON.parse(text));
    expect(queued.ok).toBe(false);
    if (!queued.ok) expect(queued.errors.map((e) => e.field)).toEqual(['documents[3].fields.total']);
    expect(await jobsInQueue()).toBe(0);

    // A message published without the producer meets the same schema in the dataset builder's
    // processor: an issue naming the field (a permanent failure), not a stack overflow retried 8 times.
    const built = fineTuneRequestMessage({ request: JSON.parse(text), correlationId: 'c-deep' });
    const message = queues['fine-tune-requests'].schema.safeParse(built.payload);
    expect(message.success).toBe(false);
    expect(message.error?.issues.map((i) => i.path.join('.'))).toEqual(['request.documents.3.fields.total']);
  });

  it('accepts a value exactly at the limit and refuses one level more', async () => {
    const atLimit = await post('/v1/fine-tune-requests', lic.key, deepRequestText('deep-2', MAX_FIELD_DEPTH));
    expect(atLimit.status).toBe(202);
    const over = await post(
      '/v1/fine-tune-requests',
      lic.key,
      deepRequestText('deep-3', MAX_FIELD_DEPTH + 1),
    );
    expect(over.status).toBe(400);
    expect(fieldsOf(over.json)).toEqual(['documents[3].fields.total']);
  });
});

describe('the depth walk (16.7)', () => {
  it('counts containers only, mixes objects and arrays, and ends on a cycle', () => {
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [{ b: {} }] }, 3)).toBe(true);
    expect(nestsDeeperThan([[], [[]], 5], 3)).toBe(false);
    expect(nestsDeeperThan([[], [[]], 5], 2)).toBe(true);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = { back: cyclic };
    expect(nestsDeeperThan(cyclic, MAX_FIELD_DEPTH)).toBe(true);
  });
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
