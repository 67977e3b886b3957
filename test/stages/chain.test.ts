import { billingStage } from '@tuneline/billing';
import { fineTuneRequestMessage } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { startSmtpServer } from '@tuneline/harness';
import { getBalance } from '@tuneline/ledger';
import { notifierStage, smtpMailer } from '@tuneline/notifier';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  startPipeline,
  tempStorage,
} from './harness.ts';
import { makeProvider } from './provider.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({ port: 0, seed: 61, speed: 2_000 });
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await pipeline.runner.start(datasetBuilderStage, {
    db: tdb.db,
    log: quietLog,
    storage: files.storage,
    catalogue: loadCatalogue({}),
  });
  await pipeline.runner.start(billingStage, { db: tdb.db, log: quietLog });
  await pipeline.runner.start(notifierStage, {
    db: tdb.db,
    log: quietLog,
    mailer: smtpMailer(smtp.url, { timeoutMs: 5_000 }),
    mailFrom: 'tuneline@example.com',
  });
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
  await tdb?.drop();
});

describe('six stages in-process', () => {
  it('takes a fine-tune request from the queue to an available model, charged once, with an e-mail', async () => {
    await seedLicense(tdb.db, 'lic-chain', 1_000_000n);
    const input = requestInput({
      requestId: 'chain-1',
      licenseId: 'lic-chain',
      autoTrain: true,
      job: { description: 'chain test', notifyEmails: 'owner@example.com', hyperparameters: 'auto' },
    });
    const request = fineTuneRequestMessage({ request: input, correlationId: 'corr-chain-1' });
    await pipeline.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);
    const fineTune = await waitFor(
      async () =>
        tdb.db
          .selectFrom('fine_tunes')
          .selectAll()
          .where('license_id', '=', 'lic-chain')
          .where('available', '=', true)
          .executeTakeFirst(),
      30_000,
      'the model to become available',
    );
    expect(fineTune.status).toBe('succeeded');
    expect(fineTune.settled_at).not.toBeNull();
    expect(BigInt(fineTune.credits_charged ?? '0')).toBeGreaterThan(0n);
    const mail = await waitFor(
      async () => smtp.received.find((m) => m.to.includes('owner@example.com')),
      10_000,
      'mail',
    );
    expect(mail.body).toContain(fineTune.fine_tuned_model ?? 'no model name');
    const transfers = await tdb.db
      .selectFrom('ledger_transfers')
      .select(['kind'])
      .where('fine_tune_id', '=', fineTune.id)
      .execute();
    expect(transfers.map((t) => t.kind).sort()).toEqual(['post', 'reserve']);
    const balance = await getBalance(tdb.db, 'lic-chain');
    expect(balance.pending).toBe(0n);
    expect(sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTune.id)).toHaveLength(1);
  });
});
