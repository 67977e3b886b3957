import { buildApi, createApiKey } from '@tuneline/api';
import { filesUploadMessage, scheduledPollMessage } from '@tuneline/contracts';
import { defaultCatalogue, findBaseModel } from '@tuneline/dataset';
import { findFineTunesByDataset, recordRecovery, restartStalePollChains } from '@tuneline/db';
import { createProviderProfile } from '@tuneline/provider';
import { createMetrics, createRedis, Publisher, type RunningStage, startStage } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { uploaderStage } from '@tuneline/uploader';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  quietLog,
  type StorageFixture,
  seedLicense,
  seedReadyDataset,
  tempStorage,
} from '../stages/harness.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';

// Issue 15.5: a row whose job keeps failing on a transient error (here: the provider answers 500 to
// every request) is re-enqueued by the recovery sweep only RECOVERY_MAX_RETRIES times. Then it is
// dead-lettered: left alone, listed with its reason, counted in tuneline_dead_letters; an admin retry
// puts it back, and once the provider is well it completes.

const ADMIN_KEY = 'admin-key-for-dead-letter-tests-0123';
const CAP = 2;

let t: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let prefix: string;
let conns: Redis[] = [];
let stage: RunningStage;
let publisher: Publisher;
let metrics: ReturnType<typeof createMetrics>;
let app: Awaited<ReturnType<typeof buildApi>>;
let licenseKey: string;

beforeAll(async () => {
  t = await createTestDatabase();
  files = tempStorage();
  prefix = testPrefix();
  sim = await startSimulator({ port: 0, seed: 15, speed: 2_000 });
  conns = [
    createRedis(redisUrl(), 'worker'),
    createRedis(redisUrl(), 'worker'),
    createRedis(redisUrl(), 'producer'),
  ];
  const [workerConnection, producerConnection, apiConnection] = conns as [Redis, Redis, Redis];
  metrics = createMetrics('uploader');
  stage = await startStage(uploaderStage, {
    config: {
      QUEUE_PREFIX: prefix,
      WORKER_CONCURRENCY: 2,
      RECOVERY_INTERVAL_MS: 60_000,
      OUTBOX_INTERVAL_MS: 100,
      RECOVERY_MAX_RETRIES: CAP,
    },
    deps: {
      db: t.db,
      log: quietLog,
      // The real SDK over HTTP, without its own retries: each job attempt is one upload call.
      provider: createProviderProfile({
        kind: 'simulator',
        apiKey: sim.apiKey,
        baseURL: sim.url,
        common: { webhookSecret: undefined, maxRetries: 0, timeoutMs: 10_000 },
      }),
      storage: files.storage,
      priceOf: (model: string) => findBaseModel(model)?.creditsPerMillionTrainingTokens,
      processTimeoutMs: 10_000,
    },
    workerConnection,
    producerConnection,
    metrics,
    timers: false, // the test runs the sweeps by hand
  });
  publisher = new Publisher(producerConnection, prefix);
  app = await buildApi({
    db: t.db,
    redis: apiConnection,
    queuePrefix: prefix,
    catalogue: defaultCatalogue,
    adminKey: ADMIN_KEY,
  });
  await seedLicense(t.db, 'lic-dead', 10_000n);
  licenseKey = (await createApiKey(t.db, 'lic-dead')).key;
});

afterAll(async () => {
  await stage?.close(2_000);
  await publisher?.close();
  await app?.close();
  for (const c of conns) c.disconnect();
  await sim?.close();
  files?.cleanup();
  await t?.drop();
});

async function call(method: 'GET' | 'POST', url: string, key: string) {
  const res = await app.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, json: res.json() };
}

const deadLetterGauge = async () => {
  const text = await metrics.registry.metrics();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('tuneline_dead_letters{') && l.includes('files-upload'));
  return line ? Number(line.split(' ').pop()) : undefined;
};

describe('dead letters', () => {
  it('dead-letters a row that keeps failing after the cap; an admin retry puts it back and it completes', async () => {
    const datasetId = await seedReadyDataset(t.db, { licenseId: 'lic-dead', storage: files.storage });
    const message = filesUploadMessage({ datasetId, correlationId: 'c-dead' });
    const job = async () => publisher.queue('files-upload').getJob(message.jobId);
    const failedAgain = async (runs: number) =>
      waitFor(
        async () => {
          const j = await job();
          return (await j?.getState()) === 'failed' && (j?.attemptsStarted ?? 0) >= runs;
        },
        20_000,
        `the upload's failure number ${runs}`,
      );

    // A provider outage that does not end, and a job whose attempts are spent after one failure.
    sim.admin.setFaults({ seed: 1, rate500: 1 });
    await publisher
      .queue('files-upload')
      .add('files-upload', message.payload, { jobId: message.jobId, attempts: 1 });
    await failedAgain(1);

    // The sweep re-enqueues the failed job CAP times…
    for (let i = 1; i <= CAP; i++) {
      const sweep = await stage.recoverDetailed();
      expect(sweep).toMatchObject({ requeued: 1, deadLettered: 0 });
      await failedAgain(i + 1);
    }
    // …then gives up on it: the row is dead-lettered, and later sweeps leave it alone.
    expect(await stage.recoverDetailed()).toMatchObject({ requeued: 0, deadLettered: 1 });
    expect(await stage.recoverDetailed()).toMatchObject({ requeued: 0, deadLettered: 0, skipped: 1 });
    expect(await (await job())?.getState()).toBe('failed');
    expect((await job())?.attemptsStarted).toBe(CAP + 1);

    // Visible: in the license's list with its reason, on the dataset, to ops, and in the metric.
    const mine = await call('GET', '/v1/dead-letters', licenseKey);
    expect(mine.status).toBe(200);
    expect(mine.json.data).toHaveLength(1);
    const dead = mine.json.data[0];
    expect(dead).toMatchObject({
      queue: 'files-upload',
      jobId: message.jobId,
      subject: { kind: 'dataset', id: datasetId },
      licenseId: 'lic-dead',
      status: 'dead_lettered',
      recoveries: CAP,
    });
    expect(dead.reason).toMatch(/500/);
    const dataset = await call('GET', `/v1/datasets/${datasetId}`, licenseKey);
    expect(dataset.json.deadLetter).toMatchObject({ id: dead.id, reason: dead.reason, recoveries: CAP });
    const listed = await call('GET', '/v1/datasets', licenseKey);
    expect(listed.json.data.find((d: { id: string }) => d.id === datasetId).deadLetter).toMatchObject({
      id: dead.id,
      queue: 'files-upload',
      reason: dead.reason,
    });
    const all = await call('GET', '/v1/admin/dead-letters?queue=files-upload', ADMIN_KEY);
    expect(all.json.data.map((d: { id: string }) => d.id)).toEqual([dead.id]);
    expect(await deadLetterGauge()).toBe(1);
    // Only ops retry.
    expect((await call('POST', `/v1/admin/dead-letters/${dead.id}/retry`, licenseKey)).status).toBe(401);

    // The provider is well again; ops retry the row and it completes.
    sim.admin.setFaults({ seed: 1, rate500: 0 });
    const retried = await call('POST', `/v1/admin/dead-letters/${dead.id}/retry`, ADMIN_KEY);
    expect(retried.status).toBe(202);
    expect(retried.json).toMatchObject({ status: 'retrying', recoveries: 0, adminRetries: 1 });
    await waitFor(
      async () => (await call('GET', `/v1/datasets/${datasetId}`, licenseKey)).json.status === 'uploaded',
      20_000,
      'the dataset to be uploaded after the retry',
    );
    expect(await findFineTunesByDataset(t.db, datasetId)).toHaveLength(1); // auto-train went on
    expect((await call('GET', `/v1/datasets/${datasetId}`, licenseKey)).json.deadLetter).toBeNull();
    expect((await call('GET', '/v1/dead-letters', licenseKey)).json.data).toEqual([]);
    expect(await deadLetterGauge()).toBe(0);
    // A second retry has nothing to retry.
    expect((await call('POST', `/v1/admin/dead-letters/${dead.id}/retry`, ADMIN_KEY)).status).toBe(409);
    expect((await stage.recoverDetailed()).waiting).toBe(0);
  });

  it('answers 400 for a bad id or queue and 404 for an unknown dead letter', async () => {
    expect((await call('POST', '/v1/admin/dead-letters/nope/retry', ADMIN_KEY)).status).toBe(400);
    const unknown = await call(
      'POST',
      '/v1/admin/dead-letters/00000000-0000-4000-8000-000000000000/retry',
      ADMIN_KEY,
    );
    expect(unknown.status).toBe(404);
    const badQueue = await call('GET', '/v1/admin/dead-letters?queue=nope', ADMIN_KEY);
    expect(badQueue.status).toBe(400);
    expect(badQueue.json.error.message).toMatch(/queue/);
  });

  it('keeps a dead-lettered poll chain stopped: the poller does not restart it as overdue', async () => {
    const datasetId = await seedReadyDataset(t.db, { licenseId: 'lic-dead', storage: files.storage });
    const insert = async () =>
      (
        await t.db
          .insertInto('fine_tunes')
          .values({
            license_id: 'lic-dead',
            dataset_id: datasetId,
            correlation_id: 'c-poll',
            description: 'poll chain',
            status: 'running',
            base_model: 'gpt-4o-mini-2024-07-18',
            notify_emails: [],
            suffix: 'poll',
            hyperparameters: JSON.stringify('auto'),
            credits_per_million_tokens: 3000,
            provider_job_id: `ftjob-${Math.random().toString(36).slice(2)}`,
            poll_count: 4,
            next_poll_at: new Date(Date.now() - 3_600_000),
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    const [stuck, overdue] = [await insert(), await insert()];
    const link = scheduledPollMessage({ fineTuneId: stuck, correlationId: 'c-poll', pollCount: 4 });
    await recordRecovery(t.db, {
      queue: link.queue,
      jobId: link.jobId,
      subjectKind: 'fine_tune',
      subjectId: stuck,
      payload: link.payload,
      reason: 'provider unreachable',
      cap: 0,
    });
    expect(await restartStalePollChains(t.db, 60_000)).toBe(1);
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select(['id', 'poll_count'])
      .where('id', 'in', [stuck, overdue])
      .execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r.poll_count]))).toEqual({ [stuck]: 4, [overdue]: 5 });
  });
});
