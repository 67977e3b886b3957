import { billingStage, inferenceUsageStage } from '@tuneline/billing';
import { FineTuneRequestProducer, QUEUE_NAMES } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { retrainCheckStage } from '@tuneline/dataset-builder/retrain';
import { evaluatorStage } from '@tuneline/evaluator';
import { startSmtpServer } from '@tuneline/harness';
import { getBalance } from '@tuneline/ledger';
import { lifecycleSweepStage, notifierStage, smtpMailer } from '@tuneline/notifier';
import { deploymentSweepStage, modelDeploymentStage } from '@tuneline/poller';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  startPipeline,
  tempStorage,
} from './harness.ts';
import { makeProvider } from './provider.ts';

let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;

test.beforeAll(async ({ db, stages }) => {
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({ port: 0, seed: 61, speed: 2_000 });
  pipeline = await startPipeline({
    db,
    runner: stages,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  // The poller's deployment stages beside its polls (startPipeline), as its main.ts starts them.
  const deploymentDeps = { db, log: quietLog, deploymentsProblem: 'no Azure in this chain' };
  await stages.start(modelDeploymentStage, deploymentDeps);
  await stages.start(deploymentSweepStage, deploymentDeps);
  // The dataset-builder service's two stages, as its main.ts starts them.
  const builderDeps = { db, log: quietLog, storage: files.storage, catalogue: loadCatalogue({}) };
  await stages.start(datasetBuilderStage, builderDeps);
  await stages.start(retrainCheckStage, builderDeps);
  // The billing service's two stages, as its main.ts starts them.
  await stages.start(billingStage, { db, log: quietLog });
  await stages.start(inferenceUsageStage, { db, log: quietLog });
  // The evaluator, which the e-mail of a fine-tune with a testing file waits for.
  await stages.start(evaluatorStage, {
    db,
    log: quietLog,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    timeLimitMs: 60_000,
    concurrency: 4,
    callAttempts: 3,
    maxTokens: 512,
  });
  // The notifier service's two stages, as its main.ts starts them.
  const notifierDeps = {
    db,
    log: quietLog,
    mailer: smtpMailer(smtp.url, { timeoutMs: 5_000 }),
    mailFrom: 'tuneline@example.com',
  };
  await stages.start(notifierStage, notifierDeps);
  await stages.start(lifecycleSweepStage, notifierDeps);
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

describe('six stages in-process', () => {
  test('takes a fine-tune request from the queue to an available model, charged once, with an e-mail', async ({
    db,
    redis,
    prefix,
    stages,
  }) => {
    // Every queue of the catalogue has its stage: a missing one fails here, by name, not as a timeout.
    stages.requireConsumers(QUEUE_NAMES);
    await seedLicense(db, 'lic-chain', 1_000_000n);
    const input = requestInput({
      requestId: 'chain-1',
      licenseId: 'lic-chain',
      autoTrain: true,
      job: { description: 'chain test', notifyEmails: 'owner@example.com', hyperparameters: 'auto' },
    });
    // Enqueued the way upstream apps do: through the typed producer.
    const producer = new FineTuneRequestProducer({ connection: redis, prefix });
    try {
      expect(await producer.enqueue(input, { correlationId: 'corr-chain-1' })).toMatchObject({
        ok: true,
        correlationId: 'corr-chain-1',
        duplicate: false,
      });
    } finally {
      await producer.close();
    }
    const fineTune = await waitFor(
      async () =>
        db
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
    expect(mail.headers['x-tuneline-correlation-id']).toBe('corr-chain-1');
    expect(mail.body).toContain('Correlation id: corr-chain-1');
    const transfers = await db
      .selectFrom('ledger_transfers')
      .select(['kind'])
      .where('fine_tune_id', '=', fineTune.id)
      .execute();
    expect(transfers.map((t) => t.kind).sort()).toEqual(['post', 'reserve']);
    const balance = await getBalance(db, 'lic-chain');
    expect(balance.pending).toBe(0n);
    expect(sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTune.id)).toHaveLength(1);

    // The request's correlationId on every row it produced (this file's database holds only this chain)
    // and on every message the stages queued through the outbox.
    const correlationIds = {
      requests: await db.selectFrom('fine_tune_requests').select('correlation_id').execute(),
      datasets: await db.selectFrom('datasets').select('correlation_id').execute(),
      fineTunes: await db.selectFrom('fine_tunes').select('correlation_id').execute(),
    };
    for (const [table, rows] of Object.entries(correlationIds)) {
      expect(rows.length, table).toBe(1);
      expect(rows[0]?.correlation_id, table).toBe('corr-chain-1');
    }
    const outbox = await db.selectFrom('outbox').select(['queue', 'payload']).execute();
    expect(new Set(outbox.map((r) => r.queue))).toEqual(
      new Set(['files-upload', 'finetune-create', 'finetune-poll', 'billing-settle', 'notify-send']),
    );
    for (const row of outbox) {
      expect((row.payload as { correlationId?: string }).correlationId, row.queue).toBe('corr-chain-1');
    }
  });
});
