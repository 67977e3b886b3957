import { randomUUID } from 'node:crypto';
import {
  billingSettleJobId,
  filesUploadMessage,
  fineTuneCreateMessage,
  scheduledPollJobId,
  scheduledPollMessage,
  webhookPollMessage,
} from '@tuneline/contracts';
import { autoTrainFineTuneId, getFineTune } from '@tuneline/db';
import { getBalance, reserveCredits } from '@tuneline/ledger';
import { ProviderError } from '@tuneline/provider';
import { PermanentError } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { trainerStage } from '@tuneline/trainer';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  seedReadyDataset,
  startPipeline,
  tempStorage,
} from './harness.ts';
import { makeProvider } from './provider.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let provider: ReturnType<typeof makeProvider>;

test.beforeAll(async ({ database, stages }) => {
  tdb = database;
  files = tempStorage();
  sim = await startSimulator({ port: 0, seed: 11, speed: 2_000 });
  provider = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey });
  pipeline = await startPipeline({
    db: tdb.db,
    runner: stages,
    provider,
    storage: files.storage,
    // Polls every 200 ms here: these tests are about creation, not about waiting.
    schedule: { intervalMs: 200, minIntervalMs: 100 },
  });
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  files?.cleanup();
});

const jobsFor = (fineTuneId: string) =>
  sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTuneId);

async function untilFinished(fineTuneId: string) {
  return waitFor(
    async () => {
      const row = await getFineTune(tdb.db, fineTuneId);
      return row && ['succeeded', 'failed', 'cancelled', 'insufficient_credits'].includes(row.status)
        ? row
        : null;
    },
    20_000,
    `fine-tune ${fineTuneId} to finish`,
  );
}

async function settleMessages(fineTuneId: string) {
  return tdb.db
    .selectFrom('outbox')
    .selectAll()
    .where('queue', '=', 'billing-settle')
    .where('job_id', '=', billingSettleJobId(fineTuneId))
    .execute();
}

/** Queues the dataset's upload the way the dataset builder does. */
async function enqueueUpload(datasetId: string, on: Pipeline = pipeline) {
  const upload = filesUploadMessage({ datasetId, correlationId: `corr-${datasetId}` });
  await on.stage('uploader').publisher.publish(upload.queue, upload.jobId, upload.payload);
}

/** A pipeline of its own whose trainer queues a new job's first poll a minute later. */
function startPipelineWithLatePolls(stages?: ('uploader' | 'trainer' | 'poller')[]) {
  return startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider,
    storage: files.storage,
    ...(stages ? { stages } : {}),
    firstPollDelayMs: 60_000,
  });
}

/** Uploads a new dataset through `on` and waits until its fine-tune's provider job is recorded. */
async function recordedFineTune(on: Pipeline, licenseId: string) {
  await seedLicense(tdb.db, licenseId, 1_000n);
  const datasetId = await seedReadyDataset(tdb.db, { licenseId, storage: files.storage });
  await enqueueUpload(datasetId, on);
  const fineTuneId = autoTrainFineTuneId(datasetId);
  return waitFor(
    async () => {
      const row = await getFineTune(tdb.db, fineTuneId);
      return row?.providerJobId ? row : null;
    },
    20_000,
    'the provider job to be recorded',
  );
}

/** A license with credits and a dataset whose training file the provider holds (stage 2 done, nothing queued). */
async function seedUploadedDataset(licenseId: string) {
  await seedLicense(tdb.db, licenseId, 1_000n);
  const datasetId = await seedReadyDataset(tdb.db, { licenseId, storage: files.storage, autoTrain: false });
  const key = `datasets/${datasetId}/train.jsonl`;
  const trainFile = await provider.uploadFile({
    filename: `${datasetId}-train.jsonl`,
    content: files.storage.openRead(key),
    size: (await files.storage.stat(key)).size,
  });
  await provider.waitUntilProcessed(trainFile.id, { timeoutMs: 10_000 });
  return tdb.db
    .updateTable('datasets')
    .set({ status: 'uploaded', train_file_id: trainFile.id })
    .where('id', '=', datasetId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

describe('trainer against the simulator', () => {
  it('runs a dataset from upload to a succeeded fine-tune with one provider job and one settlement message', async () => {
    await seedLicense(tdb.db, 'lic-happy', 1_000n);
    const datasetId = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-happy',
      storage: files.storage,
      testExamples: 10,
    });
    await enqueueUpload(datasetId);
    const fineTuneId = autoTrainFineTuneId(datasetId);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('succeeded');
    expect(done.fineTunedModel).toMatch(/^ft:gpt-4o-mini-2024-07-18:/);
    expect(Number(done.trainedTokens)).toBeGreaterThan(0);
    expect(done.creditsReserved).toBe(30n); // 27 estimated + 10 % margin, rounded up
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect(await settleMessages(fineTuneId)).toHaveLength(1);
    const events = await tdb.db
      .selectFrom('provider_events')
      .selectAll()
      .where('fine_tune_id', '=', fineTuneId)
      .execute();
    expect(events.length).toBeGreaterThan(0);
    const checkpoints = await tdb.db
      .selectFrom('checkpoints')
      .selectAll()
      .where('fine_tune_id', '=', fineTuneId)
      .execute();
    expect(checkpoints.length).toBeGreaterThan(0);
    const dataset = await tdb.db
      .selectFrom('datasets')
      .selectAll()
      .where('id', '=', datasetId)
      .executeTakeFirstOrThrow();
    expect(dataset.status).toBe('uploaded');
    expect(dataset.train_file_id).toMatch(/^file-/);
    expect(dataset.test_file_id).toMatch(/^file-/);
  });

  it('adopts the job by metadata when the create response is lost: exactly one provider job', async () => {
    await seedLicense(tdb.db, 'lic-lost', 1_000n);
    const datasetId = await seedReadyDataset(tdb.db, { licenseId: 'lic-lost', storage: files.storage });
    sim.admin.setFaults({ lostCreateRate: 1, lostCreateMode: '500' });
    try {
      await enqueueUpload(datasetId);
      const fineTuneId = autoTrainFineTuneId(datasetId);
      await waitFor(
        async () => (await getFineTune(tdb.db, fineTuneId))?.providerJobId,
        15_000,
        'job id stored',
      );
      expect(sim.admin.state().faultLog.some((f) => f.fault === 'lost-create-500')).toBe(true);
      sim.admin.setFaults({});
      const done = await untilFinished(fineTuneId);
      expect(done.status).toBe('succeeded');
      const jobs = jobsFor(fineTuneId);
      expect(jobs).toHaveLength(1);
      expect(done.providerJobId).toBe(jobs[0]?.id);
    } finally {
      sim.admin.setFaults({});
    }
  });

  it('adopts a job created before a crash (created at the provider, id never stored)', async () => {
    // Stage 2 ran (files uploaded), stage 3 reserved and created the job, then died before recording it.
    const dataset = await seedUploadedDataset('lic-crash');
    const fineTuneId = randomUUID();
    await tdb.db
      .insertInto('fine_tunes')
      .values({
        id: fineTuneId,
        license_id: dataset.license_id,
        dataset_id: dataset.id,
        correlation_id: dataset.correlation_id,
        base_model: dataset.base_model,
        // Stage 3 had reserved (the row moved to creating with the reservation) before creating.
        status: 'creating',
        credits_reserved: '100',
        description: 'crash test',
        notify_emails: [],
        suffix: 'crash-test',
        hyperparameters: JSON.stringify('auto'),
        credits_per_million_tokens: '3000',
      })
      .execute();
    await reserveCredits(tdb.db, {
      fineTuneId,
      licenseId: dataset.license_id,
      amount: 100n,
      model: dataset.base_model,
    });
    const orphan = await provider.createJob({
      model: dataset.base_model,
      trainingFile: dataset.train_file_id as string,
      suffix: 'crash-test',
      metadata: { fine_tune_id: fineTuneId },
    });
    // The restarted trainer finds the row waiting (recovery) and runs it.
    const recovered = await pipeline.stage('trainer').recover();
    expect(recovered).toBeGreaterThanOrEqual(1);
    const done = await untilFinished(fineTuneId);
    expect(done.providerJobId).toBe(orphan.id);
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect(done.status).toBe('succeeded');
  });

  it('ends with insufficient_credits, the amounts in the message, a notification and no provider job', async () => {
    await seedLicense(tdb.db, 'lic-poor', 5n);
    const datasetId = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-poor',
      storage: files.storage,
      estimatedCredits: 100n,
      job: {
        description: 'too expensive',
        notifyEmails: 'a@example.com; b@example.com',
        hyperparameters: 'auto',
      },
    });
    await enqueueUpload(datasetId);
    const fineTuneId = autoTrainFineTuneId(datasetId);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('insufficient_credits');
    expect(done.errorMessage).toContain('needs 110 credits');
    expect(done.errorMessage).toContain('5 available');
    expect(done.providerJobId).toBeNull();
    expect(jobsFor(fineTuneId)).toHaveLength(0);
    const notes = await tdb.db
      .selectFrom('notifications')
      .selectAll()
      .where('fine_tune_id', '=', fineTuneId)
      .execute();
    expect(notes.map((n) => n.recipient).sort()).toEqual(['a@example.com', 'b@example.com']);
    expect(notes.every((n) => n.kind === 'insufficient_credits')).toBe(true);
    expect(await settleMessages(fineTuneId)).toHaveLength(0);
  });

  it('ends a fine-tune whose provider job is gone with the provider message, and queues settlement', async () => {
    await seedLicense(tdb.db, 'lic-gone', 0n);
    const datasetId = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-gone',
      storage: files.storage,
      autoTrain: false,
    });
    const fineTuneId = randomUUID();
    await tdb.db
      .insertInto('fine_tunes')
      .values({
        id: fineTuneId,
        license_id: 'lic-gone',
        dataset_id: datasetId,
        correlation_id: 'corr-gone',
        base_model: 'gpt-4o-mini-2024-07-18',
        status: 'running',
        description: '',
        notify_emails: [],
        suffix: 'gone',
        hyperparameters: JSON.stringify('auto'),
        credits_per_million_tokens: '3000',
        provider_job_id: 'ftjob-doesnotexist000000000',
      })
      .execute();
    const poll = scheduledPollMessage({ fineTuneId, correlationId: 'corr-gone', pollCount: 0 });
    await pipeline.stage('poller').publisher.publish(poll.queue, poll.jobId, poll.payload);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('failed');
    expect(done.errorCode).toBe('provider_error');
    expect(done.errorMessage).toMatch(/404/);
    expect(await settleMessages(fineTuneId)).toHaveLength(1);
  });
});

describe('first poll of a new job', () => {
  it('comes after firstPollDelayMs: next_poll_at and the queued poll are both delayed', async () => {
    // Uploader and trainer only, the first poll one minute away: nothing polls during the test.
    const delayed = await startPipelineWithLatePolls(['uploader', 'trainer']);
    try {
      const recorded = await recordedFineTune(delayed, 'lic-first-poll');
      const fineTuneId = recorded.id;
      const dueIn = (recorded.nextPollAt?.getTime() ?? 0) - recorded.updatedAt.getTime();
      expect(dueIn).toBeGreaterThan(55_000);
      expect(dueIn).toBeLessThan(65_000);
      const polls = delayed.stage('trainer').publisher.queue('finetune-poll');
      const poll = await waitFor(
        async () => (await polls?.getJob(scheduledPollJobId(fineTuneId, recorded.pollCount))) ?? null,
        10_000,
        'the first poll to be queued',
      );
      expect(await poll.getState()).toBe('delayed');
      // The publisher subtracts the time since the row was written.
      expect(poll.opts.delay).toBeGreaterThan(55_000);
      expect(poll.opts.delay).toBeLessThanOrEqual(60_000);
    } finally {
      await delayed.close();
    }
  });
});

describe('polls of one fine-tune that arrive together', () => {
  it('run one after another in a poller: the job details are fetched once', async () => {
    // The trainer's own first poll is a minute away: only the two polls below run.
    const together = await startPipelineWithLatePolls();
    try {
      const recorded = await recordedFineTune(together, 'lic-together');
      const fineTuneId = recorded.id;
      await waitFor(
        async () => jobsFor(fineTuneId).find((j) => j.status === 'succeeded') ?? null,
        20_000,
        'the simulator to finish the job',
      );
      const before = { ...together.pollerProvider.byMethod };
      const poller = together.stage('poller').publisher;
      const subject = { fineTuneId, correlationId: 'corr-together' };
      // A webhook's poll, and a recovery sweep's re-add of a link that is not the chain's current one.
      const arriving = [
        webhookPollMessage({ ...subject, webhookId: 'w1' }),
        scheduledPollMessage({ ...subject, pollCount: recorded.pollCount + 1, reason: 'recovery' }),
      ];
      await Promise.all(arriving.map((m) => poller?.publish(m.queue, m.jobId, m.payload)));
      const done = await untilFinished(fineTuneId);
      expect(done.status).toBe('succeeded');
      const polls = poller?.queue('finetune-poll');
      await waitFor(
        async () => {
          const states = await Promise.all(
            arriving.map(async (m) => (await polls?.getJob(m.jobId))?.getState()),
          );
          return states.every((s) => s === 'completed');
        },
        10_000,
        'both polls to complete',
      );
      const fetched = (method: string) =>
        (together.pollerProvider.byMethod[method] ?? 0) - (before[method] ?? 0);
      expect(fetched('listEvents')).toBe(1);
      expect(fetched('listCheckpoints')).toBe(1);
      expect(await settleMessages(fineTuneId)).toHaveLength(1);
    } finally {
      await together.close();
    }
  });
});

describe('provider errors at creation: the trainer decides by their kind', () => {
  /** An uploaded dataset and its pending fine-tune, queued nowhere: only the handler calls below run it. */
  async function pendingFineTune(licenseId: string, baseModel = 'gpt-4o-mini-2024-07-18') {
    const dataset = await seedUploadedDataset(licenseId);
    const datasetId = dataset.id;
    const fineTuneId = randomUUID();
    await tdb.db
      .insertInto('fine_tunes')
      .values({
        id: fineTuneId,
        license_id: licenseId,
        dataset_id: datasetId,
        correlation_id: dataset.correlation_id,
        base_model: baseModel,
        description: 'errors',
        notify_emails: [],
        suffix: 'errors',
        hyperparameters: JSON.stringify('auto'),
        credits_per_million_tokens: '3000',
      })
      .execute();
    return fineTuneId;
  }

  /** Runs the trainer's handler once, as its worker would, with this provider. */
  async function runTrainer(fineTuneId: string, profile: typeof provider) {
    const message = fineTuneCreateMessage({ fineTuneId, correlationId: 'corr-errors' });
    const ctx = {
      queue: 'finetune-create' as const,
      jobId: message.jobId,
      attempt: 1,
      correlationId: 'corr-errors',
      log: quietLog,
    };
    await trainerStage.handle(message.payload, ctx, {
      db: tdb.db,
      log: quietLog,
      provider: profile,
      reservationMarginPercent: 10,
      firstPollDelayMs: 60_000,
    });
  }

  it('a bad key (401) is retried, not an ending: the fine-tune keeps its reservation until the key works', async () => {
    const fineTuneId = await pendingFineTune('lic-bad-key');
    const badKey = makeProvider({ baseURL: sim.url, apiKey: 'sk-wrong' });
    const err = await runTrainer(fineTuneId, badKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: 'auth', status: 401 });
    expect(err).not.toBeInstanceOf(PermanentError);
    expect(await getFineTune(tdb.db, fineTuneId)).toMatchObject({ status: 'creating', creditsReserved: 30n });
    expect(await getBalance(tdb.db, 'lic-bad-key')).toMatchObject({ pending: 30n });
    expect(await settleMessages(fineTuneId)).toHaveLength(0);
    // The key is fixed: the retry creates the job.
    await runTrainer(fineTuneId, provider);
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect((await getFineTune(tdb.db, fineTuneId))?.providerJobId).toBe(jobsFor(fineTuneId)[0]?.id);
  });

  it('a refused job (400) ends the fine-tune failed with the provider message and queues one settlement', async () => {
    const fineTuneId = await pendingFineTune('lic-refused', 'gpt-unknown');
    await runTrainer(fineTuneId, provider);
    expect(await getFineTune(tdb.db, fineTuneId)).toMatchObject({
      status: 'failed',
      errorCode: 'provider_rejected',
      errorMessage: expect.stringMatching(/400.*gpt-unknown is not available for fine-tuning/),
    });
    expect(jobsFor(fineTuneId)).toHaveLength(0);
    expect(await settleMessages(fineTuneId)).toHaveLength(1);
  });
});
