import { randomUUID } from 'node:crypto';
import { buildApi, createApiKey, profileChatProvider } from '@tuneline/api';
import { requestJobId } from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import { auditLedger, getBalance } from '@tuneline/ledger';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read and walk arbitrary response JSON
type AnyJson = any;

const ADMIN_KEY = 'admin-key-for-api-tests-0123456789';

let t: TestDatabase;
let redis: Redis;
let prefix: string;
let sim: RunningSimulator;
let app: Awaited<ReturnType<typeof buildApi>>;
let a: { id: string; key: string };
let b: { id: string; key: string };

type Method = 'GET' | 'POST';
async function call(
  method: Method,
  url: string,
  key?: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await app.inject({
    method,
    url,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
  let json: AnyJson;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, text: res.body, headers: res.headers };
}

function documents(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `inv-${i}`,
    text: `INVOICE ${1000 + i}\nTotal: ${(i + 1) * 10}.00 EUR`,
    fields: { invoiceNumber: `${1000 + i}`, total: (i + 1) * 10 },
  }));
}

function request(requestId: string, extra: Record<string, unknown> = {}) {
  return {
    requestId,
    documents: documents(12),
    modelConfig: {
      systemPrompt: 'Extract fields as JSON.',
      userPromptTemplate: 'Document:\n{{text}}',
      mappedFields: ['total'],
    },
    baseModel: 'gpt-4o-mini-2024-07-18',
    testPercent: 20,
    ...extra,
  };
}

/** Trains a real model at the simulator so inference has something to serve. */
async function trainSimulatorModel(): Promise<string> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  const lines = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'system', content: 'Extract fields as JSON.' },
        { role: 'user', content: `INVOICE ${1000 + i}\nTotal: ${i + 1}0.00 EUR` },
        { role: 'assistant', content: JSON.stringify({ total: (i + 1) * 10 }) },
      ],
    }),
  ).join('\n');
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines), 'train.jsonl'),
    purpose: 'fine-tune',
  });
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-4o-mini-2024-07-18',
    training_file: file.id,
    suffix: 'api',
  });
  const done = await waitFor(
    async () => {
      const j = await client.fineTuning.jobs.retrieve(job.id);
      if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`simulator job ${j.status}`);
      return j.status === 'succeeded' ? j : undefined;
    },
    20_000,
    'simulator fine-tune',
  );
  return done.fine_tuned_model as string;
}

beforeAll(async () => {
  t = await createTestDatabase();
  redis = createRedis(redisUrl(), 'producer');
  prefix = testPrefix();
  sim = await startSimulator({ speed: 100_000, seed: 7 });
  const profile = createProvider(
    providerEnvSchema.parse({ PROVIDER: 'simulator', SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
  );
  app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: prefix,
    catalogue: defaultCatalogue,
    provider: profileChatProvider(profile),
    adminKey: ADMIN_KEY,
  });
  a = await makeLicense(t.db, 'lic-a');
  b = await makeLicense(t.db, 'lic-b');
});

afterAll(async () => {
  await app?.close();
  await sim?.close();
  redis?.disconnect();
  await t?.drop();
});

describe('authentication', () => {
  it('refuses a missing, unknown or wrong-kind key with 401', async () => {
    expect((await call('GET', '/v1/datasets')).status).toBe(401);
    expect((await call('GET', '/v1/datasets', 'tl_not-a-key')).status).toBe(401);
    expect((await call('GET', '/v1/datasets', ADMIN_KEY)).status).toBe(401);
    expect((await call('POST', '/v1/admin/licenses', a.key, { name: 'x' })).status).toBe(401);
    const res = await call('GET', '/v1/credits', undefined, undefined, {
      authorization: 'Basic Zm9vOmJhcg==',
    });
    expect(res.status).toBe(401);
    expect(res.json.error.message).toMatch(/invalid/);
  });

  it('stores keys hashed, never in clear', async () => {
    const rows = await t.db.selectFrom('api_keys').select(['key_hash', 'key_prefix']).execute();
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) {
      expect(r.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.key_hash).not.toBe(a.key);
    }
  });
});

describe('admin', () => {
  it('creates a license, a key that works, and grants credits idempotently', async () => {
    const created = await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'lic-new', name: 'New Co' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: 'lic-new', name: 'New Co' });
    expect(
      (await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'lic-new', name: 'Again' })).status,
    ).toBe(409);

    const key = await call('POST', '/v1/admin/licenses/lic-new/keys', ADMIN_KEY);
    expect(key.status).toBe(201);
    expect(key.json.key).toMatch(/^tl_/);
    const who = await call('GET', '/v1/license', key.json.key);
    expect(who.json).toMatchObject({ id: 'lic-new', name: 'New Co' });

    const grant = { grantId: 'welcome', amount: 5000, memo: 'welcome' };
    const g1 = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, grant);
    expect(g1.status).toBe(200);
    expect(g1.json.available).toBe('5000');
    const g2 = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, grant);
    expect(g2.json.available).toBe('5000');
    const conflict = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, {
      ...grant,
      amount: 6000,
    });
    expect(conflict.status).toBe(409);
    expect((await getBalance(t.db, 'lic-new')).available).toBe(5000n);
  });

  it('accepts admin keys stored hashed in api_keys, and no longer once revoked', async () => {
    const stored = await createApiKey(t.db, null);
    const res = await call('POST', '/v1/admin/licenses', stored.key, { name: 'Via stored key' });
    expect(res.status).toBe(201);
    expect(res.json.id).toMatch(/^lic-/);
    await t.db.updateTable('api_keys').set({ revoked_at: new Date() }).where('id', '=', stored.id).execute();
    expect((await call('POST', '/v1/admin/licenses', stored.key, { name: 'Again' })).status).toBe(401);
  });

  it('answers 400 naming fields and 404 for unknown licenses', async () => {
    const bad = await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'has space', name: '' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields.map((f: { field: string }) => f.field).sort()).toEqual(['id', 'name']);
    const badGrant = await call('POST', '/v1/admin/licenses/lic-a/credits', ADMIN_KEY, {
      grantId: 'g',
      amount: -5,
    });
    expect(badGrant.status).toBe(400);
    expect(badGrant.json.error.fields[0].field).toBe('amount');
    expect((await call('POST', '/v1/admin/licenses/nope/keys', ADMIN_KEY)).status).toBe(404);
    expect(
      (await call('POST', '/v1/admin/licenses/nope/credits', ADMIN_KEY, { grantId: 'g', amount: 1 })).status,
    ).toBe(404);
  });

  it('serves the queue dashboard only with the admin key', async () => {
    const anonymous = await call('GET', '/admin/queues');
    expect(anonymous.json.error.message).toMatch(/missing API key/);
    expect(anonymous.status).toBe(401);
    expect((await call('GET', '/admin/queues', a.key)).status).toBe(401);
    const ok = await call('GET', '/admin/queues', ADMIN_KEY);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/html/);
    const basic = Buffer.from(`ops:${ADMIN_KEY}`).toString('base64');
    expect(
      (await call('GET', '/admin/queues', undefined, undefined, { authorization: `Basic ${basic}` })).status,
    ).toBe(200);
  });
});

describe('fine-tune requests', () => {
  it('enqueues with a deterministic job id; a retry is a duplicate with the same correlation id', async () => {
    const first = await call('POST', '/v1/fine-tune-requests', a.key, request('r-1'));
    expect(first.status).toBe(202);
    expect(first.json.jobId).toBe(requestJobId('lic-a', 'r-1'));
    expect(first.json.duplicate).toBe(false);
    const again = await call('POST', '/v1/fine-tune-requests', a.key, request('r-1', { licenseId: 'lic-a' }));
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({
      jobId: first.json.jobId,
      correlationId: first.json.correlationId,
      duplicate: true,
    });
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    const job = await queue.getJob(first.json.jobId);
    await queue.close();
    expect(job?.data.request.licenseId).toBe('lic-a');
    expect(job?.data.request.documents).toHaveLength(12);
  });

  it('keeps tenants apart whose license and request ids join to the same text (X + eu-1, X-eu + 1)', async () => {
    const x = await makeLicense(t.db, 'X', 0n);
    const xEu = await makeLicense(t.db, 'X-eu', 0n);
    const first = await call('POST', '/v1/fine-tune-requests', x.key, request('eu-1'));
    const second = await call('POST', '/v1/fine-tune-requests', xEu.key, request('1', { testPercent: 10 }));
    expect(first.status).toBe(202);
    // Not a 409 naming the other tenant's request, and not a duplicate of it: a job of its own.
    expect(second.status).toBe(202);
    expect(second.json.duplicate).toBe(false);
    expect(second.json.jobId).not.toBe(first.json.jobId);
    expect(second.json.correlationId).not.toBe(first.json.correlationId);
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    const [jobX, jobXEu] = await Promise.all([
      queue.getJob(first.json.jobId),
      queue.getJob(second.json.jobId),
    ]);
    await queue.close();
    expect(jobX?.data.request).toMatchObject({ licenseId: 'X', requestId: 'eu-1', testPercent: 20 });
    expect(jobXEu?.data.request).toMatchObject({ licenseId: 'X-eu', requestId: '1', testPercent: 10 });
  });

  it('refuses a conflicting reuse of the requestId with 409', async () => {
    await call('POST', '/v1/fine-tune-requests', a.key, request('r-2'));
    const res = await call('POST', '/v1/fine-tune-requests', a.key, request('r-2', { testPercent: 10 }));
    expect(res.status).toBe(409);
    expect(res.json.error.fields[0].field).toBe('requestId');
  });

  it('names the bad fields, and refuses another license id', async () => {
    const bad = await call('POST', '/v1/fine-tune-requests', a.key, {
      ...request('r-3', { documents: documents(3), testPercent: 80 }),
      job: { suffix: 'Way Too Long Suffix For Models' },
    });
    expect(bad.status).toBe(400);
    const fields = bad.json.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['documents', 'testPercent', 'job.suffix']));
    const foreign = await call(
      'POST',
      '/v1/fine-tune-requests',
      a.key,
      request('r-4', { licenseId: 'lic-b' }),
    );
    expect(foreign.status).toBe(400);
    expect(foreign.json.error.fields[0].field).toBe('licenseId');
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    expect(await queue.getJob(requestJobId('lic-b', 'r-4'))).toBeUndefined();
    await queue.close();
    const notJson = await app.inject({
      method: 'POST',
      url: '/v1/fine-tune-requests',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
      payload: '{"requestId":',
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.message).toBeTruthy();
  });
});

describe('datasets', () => {
  it('lists only the caller’s datasets with the grid figures; another license’s id is 404', async () => {
    const mine = await makeDataset(t.db, a.id, 'uploaded');
    const theirs = await makeDataset(t.db, b.id);
    const list = await call('GET', '/v1/datasets', a.key);
    expect(list.status).toBe(200);
    const ids = list.json.data.map((d: { id: string }) => d.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    const one = await call('GET', `/v1/datasets/${mine}`, a.key);
    expect(one.json).toMatchObject({
      id: mine,
      trainExamples: 48,
      testExamples: 12,
      trainTokens: '24000',
      estimatedBilledTokens: '72000',
      estimatedCredits: '216',
      trainFileId: 'file-train',
      status: 'uploaded',
    });
    expect(one.json.warnings).toHaveLength(1);
    expect((await call('GET', `/v1/datasets/${theirs}`, a.key)).status).toBe(404);
    expect((await call('GET', `/v1/datasets/${randomUUID()}`, a.key)).status).toBe(404);
    const bad = await call('GET', '/v1/datasets/not-a-uuid', a.key);
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields[0].field).toBe('id');
  });

  it('queues the upload of a ready dataset once; another license’s dataset is untouched', async () => {
    const ready = await makeDataset(t.db, a.id, 'ready');
    const res = await call('POST', `/v1/datasets/${ready}/upload`, a.key);
    expect(res.status).toBe(202);
    expect(res.json.status).toBe('uploading');
    expect((await call('POST', `/v1/datasets/${ready}/upload`, a.key)).status).toBe(202);
    const outbox = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `files-upload-${ready}`)
      .execute();
    expect(outbox).toHaveLength(1);
    const queue = new Queue('files-upload', { connection: redis, prefix });
    expect((await queue.getJob(`files-upload-${ready}`))?.data.datasetId).toBe(ready);
    await queue.close();

    const theirs = await makeDataset(t.db, b.id, 'ready');
    expect((await call('POST', `/v1/datasets/${theirs}/upload`, a.key)).status).toBe(404);
    const row = await t.db
      .selectFrom('datasets')
      .select('status')
      .where('id', '=', theirs)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('ready');
    expect(
      await t.db.selectFrom('outbox').selectAll().where('job_id', '=', `files-upload-${theirs}`).execute(),
    ).toHaveLength(0);

    const invalid = await makeDataset(t.db, a.id, 'invalid');
    expect((await call('POST', `/v1/datasets/${invalid}/upload`, a.key)).status).toBe(409);
  });

  it('creates a fine-tune from an uploaded dataset, idempotently per key, with a finetune-create message', async () => {
    const uploaded = await makeDataset(t.db, a.id, 'uploaded');
    const body = {
      description: 'Invoices v2',
      notifyEmails: 'a@example.com; b@example.com',
      idempotencyKey: 'k1',
    };
    const res = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, body);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      datasetId: uploaded,
      status: 'pending',
      suffix: 'a1b2c3d4',
      notifyEmails: ['a@example.com', 'b@example.com'],
      creditsPerMillionTokens: '3000',
    });
    const again = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, body);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(res.json.id);
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select('id')
      .where('dataset_id', '=', uploaded)
      .execute();
    expect(rows).toHaveLength(1);
    const outbox = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `finetune-create-${res.json.id}`)
      .execute();
    expect(outbox).toHaveLength(1);

    const bad = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, {
      description: 'x'.repeat(121),
      suffix: 'UPPER',
      notifyEmails: 'not-an-email',
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields.map((f: { field: string }) => f.field).sort()).toEqual([
      'description',
      'notifyEmails',
      'suffix',
    ]);

    const ready = await makeDataset(t.db, a.id, 'ready');
    expect((await call('POST', `/v1/datasets/${ready}/fine-tunes`, a.key, {})).status).toBe(409);

    const theirs = await makeDataset(t.db, b.id, 'uploaded');
    expect((await call('POST', `/v1/datasets/${theirs}/fine-tunes`, a.key, {})).status).toBe(404);
    expect(
      await t.db.selectFrom('fine_tunes').select('id').where('dataset_id', '=', theirs).execute(),
    ).toHaveLength(0);
  });
});

describe('fine-tunes and activation', () => {
  it('shows own fine-tunes with events and checkpoints; others are 404', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const done = await makeFineTune(t.db, a.id, ds, { withHistory: true });
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'));
    const list = await call('GET', '/v1/fine-tunes', a.key);
    const ids = list.json.data.map((f: { id: string }) => f.id);
    expect(ids).toContain(done);
    expect(ids).not.toContain(theirs);
    const one = await call('GET', `/v1/fine-tunes/${done}`, a.key);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({
      status: 'succeeded',
      trainedTokens: '72000',
      creditsCharged: '216',
      creditsReserved: '260',
    });
    expect(one.json.events).toHaveLength(3);
    expect(
      one.json.checkpoints.map((c: { metrics: { train_loss: number } }) => c.metrics.train_loss),
    ).toEqual([1.9, 1.2, 0.7, 0.45]);
    expect((await call('GET', `/v1/fine-tunes/${theirs}`, a.key)).status).toBe(404);
  });

  it('cancels a running fine-tune; finished is 409; another license’s is 404 and unchanged', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const running = await makeFineTune(t.db, a.id, ds, { status: 'running' });
    const res = await call('POST', `/v1/fine-tunes/${running}/cancel`, a.key);
    expect(res.status).toBe(202);
    expect(res.json.cancelRequested).toBe(true);
    const poll = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `finetune-poll-${running}-cancel`)
      .execute();
    expect(poll).toHaveLength(1);
    const finished = await makeFineTune(t.db, a.id, ds, { status: 'failed' });
    expect((await call('POST', `/v1/fine-tunes/${finished}/cancel`, a.key)).status).toBe(409);
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'), {
      status: 'running',
    });
    expect((await call('POST', `/v1/fine-tunes/${theirs}/cancel`, a.key)).status).toBe(404);
    const row = await t.db
      .selectFrom('fine_tunes')
      .select('cancel_requested_at')
      .where('id', '=', theirs)
      .executeTakeFirstOrThrow();
    expect(row.cancel_requested_at).toBeNull();
  });

  it('activates and deactivates only available models of one’s own license', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const ok = await makeFineTune(t.db, a.id, ds);
    const running = await makeFineTune(t.db, a.id, ds, { status: 'running' });
    const unsettled = await makeFineTune(t.db, a.id, ds, { available: false });
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'));

    const on = await call('POST', `/v1/fine-tunes/${ok}/activate`, a.key);
    expect(on.status).toBe(200);
    expect(on.json.active).toBe(true);
    const active = await call('GET', '/v1/models/active', a.key);
    expect(active.json.data.map((m: { fineTuneId: string }) => m.fineTuneId)).toContain(ok);

    expect((await call('POST', `/v1/fine-tunes/${running}/activate`, a.key)).status).toBe(409);
    expect((await call('POST', `/v1/fine-tunes/${unsettled}/activate`, a.key)).status).toBe(409);
    expect((await call('POST', `/v1/fine-tunes/${theirs}/activate`, a.key)).status).toBe(404);
    expect((await call('POST', `/v1/fine-tunes/${theirs}/deactivate`, a.key)).status).toBe(404);
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select(['id', 'active'])
      .where('id', 'in', [running, unsettled, theirs])
      .execute();
    expect(rows.every((r) => r.active === false)).toBe(true);
    const bActive = await call('GET', '/v1/models/active', b.key);
    expect(bActive.json.data).toEqual([]);

    const off = await call('POST', `/v1/fine-tunes/${ok}/deactivate`, a.key);
    expect(off.json.active).toBe(false);
    expect(
      (await call('GET', '/v1/models/active', a.key)).json.data.map(
        (m: { fineTuneId: string }) => m.fineTuneId,
      ),
    ).not.toContain(ok);
    expect((await call('POST', '/v1/fine-tunes/nope/activate', a.key)).status).toBe(400);
  });
});

describe('inference', () => {
  it('serves only the caller’s own active models and meters usage in the ledger', async () => {
    const model = await trainSimulatorModel();
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const ft = await makeFineTune(t.db, a.id, ds, { model });
    const chat = { model, messages: [{ role: 'user', content: 'INVOICE 1003\nTotal: 40.00 EUR' }] };

    // Inactive: 404, and nothing metered.
    expect((await call('POST', '/v1/chat/completions', a.key, chat)).status).toBe(404);
    await call('POST', `/v1/fine-tunes/${ft}/activate`, a.key);
    // Another license asking for it: 404 too.
    expect((await call('POST', '/v1/chat/completions', b.key, chat)).status).toBe(404);
    expect(
      (await call('POST', '/v1/chat/completions', a.key, { ...chat, model: 'gpt-4o-mini-2024-07-18' }))
        .status,
    ).toBe(404);
    expect(await t.db.selectFrom('inference_usage').selectAll().execute()).toHaveLength(0);

    const before = await getBalance(t.db, a.id);
    const res = await call('POST', '/v1/chat/completions', a.key, chat);
    expect(res.status).toBe(200);
    expect(res.json.object).toBe('chat.completion');
    expect(res.json.choices[0].message.content).toContain('40');
    const usage = await t.db
      .selectFrom('inference_usage')
      .selectAll()
      .where('fine_tune_id', '=', ft)
      .execute();
    expect(usage).toHaveLength(1);
    expect(usage[0]?.prompt_tokens).toBe(res.json.usage.prompt_tokens);
    expect(usage[0]?.completion_tokens).toBe(res.json.usage.completion_tokens);
    const credits = BigInt(usage[0]?.credits ?? '0');
    expect(credits).toBeGreaterThan(0n);
    const after = await getBalance(t.db, a.id);
    expect(before.posted - after.posted).toBe(credits);
    // The fixtures' settled fine-tunes have no ledger posts (inserted directly); every other invariant holds.
    const { violations } = await auditLedger(t.db);
    expect(violations.filter((v) => !v.invariant.includes('settled fine-tune'))).toEqual([]);
    const log = await call('GET', '/v1/credits/usage', a.key);
    const last = log.json.data.at(-1);
    expect(last).toMatchObject({ kind: 'charge', model, amount: credits.toString() });

    const bad = await call('POST', '/v1/chat/completions', a.key, { model, messages: [] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields[0].field).toBe('messages');
    expect((await call('POST', '/v1/chat/completions', a.key, { ...chat, stream: true })).status).toBe(400);
  });

  it('answers 502 and meters nothing when the provider fails', async () => {
    const model = `ft:gpt-4o-mini-2024-07-18:gone:${randomUUID().slice(0, 6)}`;
    const ft = await makeFineTune(t.db, a.id, await makeDataset(t.db, a.id, 'uploaded'), {
      model,
      active: true,
    });
    const res = await call('POST', '/v1/chat/completions', a.key, {
      model,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(502);
    expect(res.json.error.message).toMatch(/provider/);
    expect(
      await t.db.selectFrom('inference_usage').selectAll().where('fine_tune_id', '=', ft).execute(),
    ).toHaveLength(0);
  });

  it('refuses inference when no credits are available', async () => {
    const poor = await makeLicense(t.db, 'lic-poor', 0n);
    const model = `ft:gpt-4o-mini-2024-07-18:poor:${randomUUID().slice(0, 6)}`;
    const ft = await makeFineTune(t.db, poor.id, await makeDataset(t.db, poor.id, 'uploaded'), {
      model,
      active: true,
    });
    const res = await call('POST', '/v1/chat/completions', poor.key, {
      model,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(402);
    expect(
      await t.db.selectFrom('inference_usage').selectAll().where('fine_tune_id', '=', ft).execute(),
    ).toHaveLength(0);
  });
});

describe('credits and pricing', () => {
  it('reports the balance and the usage log as JSON and CSV', async () => {
    const balance = await call('GET', '/v1/credits', b.key);
    expect(balance.json).toMatchObject({
      licenseId: 'lic-b',
      posted: '100000',
      available: '100000',
      pending: '0',
    });
    const json = await call('GET', '/v1/credits/usage', b.key);
    expect(json.json.data[0]).toMatchObject({ kind: 'grant', amount: '100000', posted: '100000' });
    const csv = await call('GET', '/v1/credits/usage?format=csv', b.key);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('at,kind,transferId,fineTuneId,model,tokens,amount,posted,available,memo');
    expect(lines[1]).toContain(',grant,grant-seed-lic-b,');
    const viaAccept = await call('GET', '/v1/credits/usage', b.key, undefined, { accept: 'text/csv' });
    expect(viaAccept.text).toBe(csv.text);
    expect((await call('GET', '/v1/credits/usage?format=xml', b.key)).status).toBe(400);
  });

  it('estimates training credits from the catalogue price', async () => {
    const res = await call(
      'GET',
      '/v1/pricing/estimate?model=gpt-4o-mini-2024-07-18&tokens=100000&epochs=3',
      a.key,
    );
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      billedTokens: '300000',
      credits: '900',
      epochs: 3,
      creditsPerMillionTrainingTokens: '3000',
    });
    const auto = await call(
      'GET',
      '/v1/pricing/estimate?model=gpt-4o-mini-2024-07-18&tokens=1000&examples=20',
      a.key,
    );
    expect(auto.json.epochs).toBe(5);
    const unknown = await call('GET', '/v1/pricing/estimate?model=gpt-9&tokens=10', a.key);
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.fields[0].field).toBe('model');
    const missing = await call('GET', '/v1/pricing/estimate?model=gpt-4o-mini-2024-07-18', a.key);
    expect(missing.status).toBe(400);
    expect(missing.json.error.fields[0].field).toBe('tokens');
    expect((await call('GET', '/v1/pricing/estimate?model=x&tokens=1')).status).toBe(401);
  });
});

describe('limits and pages', () => {
  it('limits the request body size', async () => {
    const small = await buildApi({
      db: t.db,
      redis,
      queuePrefix: prefix,
      catalogue: defaultCatalogue,
      bodyLimit: 2048,
    });
    try {
      const res = await small.inject({
        method: 'POST',
        url: '/v1/fine-tune-requests',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
        payload: JSON.stringify(request('big', { documents: documents(60) })),
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().error.message).toBeTruthy();
    } finally {
      await small.close();
    }
  });

  it('serves the hub, the docs page and 404s unknown routes as JSON', async () => {
    const hub = await call('GET', '/hub');
    expect(hub.status).toBe(200);
    expect(hub.text).toContain('<label for="license-key">');
    expect((await call('GET', '/hub/hub.js')).headers['content-type']).toMatch(/javascript/);
    const docs = await call('GET', '/docs');
    expect(docs.text).toContain('/docs/docs.js');
    const missing = await call('GET', '/v1/nothing-here', a.key);
    expect(missing.status).toBe(404);
    expect(missing.json.error.message).toMatch(/no route/);
  });
});

describe('OpenAPI document', () => {
  const EXPECTED = [
    'POST /v1/fine-tune-requests',
    'GET /v1/datasets',
    'GET /v1/datasets/{id}',
    'POST /v1/datasets/{id}/upload',
    'POST /v1/datasets/{id}/fine-tunes',
    'GET /v1/fine-tunes',
    'GET /v1/fine-tunes/{id}',
    'POST /v1/fine-tunes/{id}/cancel',
    'POST /v1/fine-tunes/{id}/discard',
    'POST /v1/fine-tunes/{id}/activate',
    'POST /v1/fine-tunes/{id}/deactivate',
    'GET /v1/models/active',
    'GET /v1/fine-tunes/{id}/evaluation',
    'POST /v1/chat/completions',
    'GET /v1/license',
    'GET /v1/credits',
    'GET /v1/credits/usage',
    'GET /v1/pricing/estimate',
    'POST /v1/admin/licenses',
    'POST /v1/admin/licenses/{id}/keys',
    'POST /v1/admin/licenses/{id}/provider',
    'POST /v1/admin/licenses/{id}/credits',
  ];

  it('is OpenAPI 3.1 with every route, operation ids, responses and resolvable refs', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    const operations: string[] = [];
    const ids = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, AnyJson>>(doc.paths)) {
      for (const [method, op] of Object.entries<AnyJson>(item)) {
        operations.push(`${method.toUpperCase()} ${path}`);
        expect(op.operationId, `${method} ${path}`).toBeTruthy();
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        for (const p of op.parameters ?? []) expect(['path', 'query']).toContain(p.in);
        // Path templates and path parameters agree.
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const declared = (op.parameters ?? [])
          .filter((p: { in: string }) => p.in === 'path')
          .map((p: { name: string }) => p.name);
        expect(declared.sort()).toEqual(templated.sort());
        if (op.security.length)
          expect(Object.keys(doc.components.securitySchemes)).toContain(Object.keys(op.security[0])[0]);
      }
    }
    expect(operations.sort()).toEqual([...EXPECTED].sort());

    // Every $ref points at something in the document; no zod-only keywords leak.
    const refs: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref') refs.push(v as string);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref.startsWith('#/')).toBe(true);
      let target: AnyJson = doc;
      for (const part of ref.slice(2).split('/')) target = target?.[part];
      expect(target, ref).toBeTypeOf('object');
    }
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining([
        'FineTuneRequest',
        'Dataset',
        'FineTune',
        'FineTuneDetail',
        'Error',
        'UsageLog',
        'ChatCompletion',
      ]),
    );
    expect(JSON.stringify(doc)).not.toMatch(/"\$defs"|"\$schema"/);
  });

  it('matches what the API answers: a dataset response validates against its schema', async () => {
    const { default: Ajv2020 } = await import('ajv/dist/2020.js');
    const ajv = new (Ajv2020 as unknown as new (o: object) => AnyJson)({
      strict: false,
      validateFormats: false,
    });
    const doc = (await call('GET', '/openapi.json')).json;
    const owner = await makeLicense(t.db, 'lic-openapi');
    await makeFineTune(t.db, owner.id, await makeDataset(t.db, owner.id, 'uploaded'), { withHistory: true });
    ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
    const validate = ajv.getSchema('doc#/components/schemas/DatasetList');
    const list = await call('GET', '/v1/datasets', owner.key);
    expect(list.json.data).toHaveLength(1);
    expect(validate(list.json), JSON.stringify(validate.errors)).toBe(true);
    const detail = ajv.getSchema('doc#/components/schemas/FineTuneDetail');
    const fts = await call('GET', '/v1/fine-tunes', owner.key);
    const one = await call('GET', `/v1/fine-tunes/${fts.json.data[0].id}`, owner.key);
    expect(one.json.checkpoints).toHaveLength(4);
    expect(detail(one.json), JSON.stringify(detail.errors)).toBe(true);
    expect(detail({ ...one.json, status: 3 })).toBe(false);
  });
});
