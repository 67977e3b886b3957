import { randomUUID } from 'node:crypto';
import {
  fineTuneCreateMessage,
  scheduledPollJobId,
  scheduledPollMessage,
  webhookPollMessage,
} from '@tuneline/contracts';
import {
  autoTrainFineTuneId,
  findDataset,
  getFineTune,
  listCheckpoints,
  listProviderEvents,
} from '@tuneline/db';
import { getBalance, reserveCredits } from '@tuneline/ledger';
import { ProviderError } from '@tuneline/provider';
import { PermanentError } from '@tuneline/runtime';
import { trainerStage } from '@tuneline/trainer';
import { describe, expect } from 'vitest';
import { redisUrl, testPrefix, waitFor } from '../support/context.ts';
import { it } from '../support/fixtures.ts';
import {
  enqueueUpload,
  quietLog,
  seedLicense,
  seedReadyDataset,
  settleMessages,
  startPipeline,
} from './harness.ts';
import { makeProvider } from './provider.ts';
import { fileRig, type RigProvider, recordedFineTune } from './rig.ts';

// Polls every 200 ms here: these tests are about creation, not about waiting.
const rig = fileRig({
  simulator: { seed: 11, speed: 2_000 },
  schedule: { intervalMs: 200, minIntervalMs: 100 },
});

const jobsFor = (fineTuneId: string) =>
  rig.sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTuneId);

async function untilFinished(fineTuneId: string) {
  return waitFor(
    async () => {
      const row = await getFineTune(rig.db, fineTuneId);
      return row && ['succeeded', 'failed', 'cancelled', 'insufficient_credits'].includes(row.status)
        ? row
        : null;
    },
    20_000,
    `fine-tune ${fineTuneId} to finish`,
  );
}

/** A pipeline of its own whose trainer queues a new job's first poll a minute later. */
function startPipelineWithLatePolls(stages?: ('uploader' | 'trainer' | 'poller')[]) {
  return startPipeline({
    db: rig.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider: rig.provider,
    storage: rig.files.storage,
    ...(stages ? { stages } : {}),
    firstPollDelayMs: 60_000,
  });
}

/** A license with credits and a dataset whose training file the provider holds (stage 2 done, nothing queued). */
async function seedUploadedDataset(licenseId: string) {
  await seedLicense(rig.db, licenseId, 1_000n);
  const datasetId = await seedReadyDataset(rig.db, {
    licenseId,
    storage: rig.files.storage,
    autoTrain: false,
  });
  const key = `datasets/${datasetId}/train.jsonl`;
  const trainFile = await rig.provider.uploadFile({
    filename: `${datasetId}-train.jsonl`,
    content: rig.files.storage.openRead(key),
    size: (await rig.files.storage.stat(key)).size,
  });
  await rig.provider.waitUntilProcessed(trainFile.id, { timeoutMs: 10_000 });
  return rig.db
    .updateTable('datasets')
    .set({ status: 'uploaded', train_file_id: trainFile.id })
    .where('id', '=', datasetId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

describe('trainer against the simulator', () => {
  it('runs a dataset from upload to a succeeded fine-tune with one provider job and one settlement message', async () => {
    await seedLicense(rig.db, 'lic-happy', 1_000n);
    const datasetId = await seedReadyDataset(rig.db, {
      licenseId: 'lic-happy',
      storage: rig.files.storage,
      testExamples: 10,
    });
    await enqueueUpload(rig.pipeline, datasetId);
    const fineTuneId = autoTrainFineTuneId(datasetId);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('succeeded');
    expect(done.fineTunedModel).toMatch(/^ft:gpt-4o-mini-2024-07-18:/);
    expect(Number(done.trainedTokens)).toBeGreaterThan(0);
    expect(done.creditsReserved).toBe(30n); // 27 estimated + 10 % margin, rounded up
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(1);
    expect((await listProviderEvents(rig.db, fineTuneId)).length).toBeGreaterThan(0);
    expect((await listCheckpoints(rig.db, fineTuneId)).length).toBeGreaterThan(0);
    expect(await findDataset(rig.db, datasetId)).toMatchObject({
      status: 'uploaded',
      trainFileId: expect.stringMatching(/^file-/),
      testFileId: expect.stringMatching(/^file-/),
    });
  });

  it('adopts the job by metadata when the create response is lost: exactly one provider job', async () => {
    await seedLicense(rig.db, 'lic-lost', 1_000n);
    const datasetId = await seedReadyDataset(rig.db, { licenseId: 'lic-lost', storage: rig.files.storage });
    rig.sim.admin.setFaults({ lostCreateRate: 1, lostCreateMode: '500' });
    try {
      await enqueueUpload(rig.pipeline, datasetId);
      const fineTuneId = autoTrainFineTuneId(datasetId);
      await waitFor(
        async () => (await getFineTune(rig.db, fineTuneId))?.providerJobId,
        15_000,
        'job id stored',
      );
      expect(rig.sim.admin.state().faultLog.some((f) => f.fault === 'lost-create-500')).toBe(true);
      rig.sim.admin.setFaults({});
      const done = await untilFinished(fineTuneId);
      expect(done.status).toBe('succeeded');
      const jobs = jobsFor(fineTuneId);
      expect(jobs).toHaveLength(1);
      expect(done.providerJobId).toBe(jobs[0]?.id);
    } finally {
      rig.sim.admin.setFaults({});
    }
  });

  it('adopts a job created before a crash (created at the provider, id never stored)', async () => {
    // Stage 2 ran (files uploaded), stage 3 reserved and created the job, then died before recording it.
    const dataset = await seedUploadedDataset('lic-crash');
    const fineTuneId = randomUUID();
    await rig.db
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
    await reserveCredits(rig.db, {
      fineTuneId,
      licenseId: dataset.license_id,
      amount: 100n,
      model: dataset.base_model,
    });
    const orphan = await rig.provider.createJob({
      model: dataset.base_model,
      trainingFile: dataset.train_file_id as string,
      suffix: 'crash-test',
      metadata: { fine_tune_id: fineTuneId },
    });
    // The restarted trainer finds the row waiting (recovery) and runs it.
    const recovered = await rig.pipeline.stage('trainer').recover();
    expect(recovered).toBeGreaterThanOrEqual(1);
    const done = await untilFinished(fineTuneId);
    expect(done.providerJobId).toBe(orphan.id);
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect(done.status).toBe('succeeded');
  });

  it('ends with insufficient_credits, the amounts in the message, a notification and no provider job', async () => {
    await seedLicense(rig.db, 'lic-poor', 5n);
    const datasetId = await seedReadyDataset(rig.db, {
      licenseId: 'lic-poor',
      storage: rig.files.storage,
      estimatedCredits: 100n,
      job: {
        description: 'too expensive',
        notifyEmails: 'a@example.com; b@example.com',
        hyperparameters: 'auto',
      },
    });
    await enqueueUpload(rig.pipeline, datasetId);
    const fineTuneId = autoTrainFineTuneId(datasetId);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('insufficient_credits');
    expect(done.errorMessage).toContain('needs 110 credits');
    expect(done.errorMessage).toContain('5 available');
    expect(done.providerJobId).toBeNull();
    expect(jobsFor(fineTuneId)).toHaveLength(0);
    const notes = await rig.db
      .selectFrom('notifications')
      .selectAll()
      .where('fine_tune_id', '=', fineTuneId)
      .execute();
    expect(notes.map((n) => n.recipient).sort()).toEqual(['a@example.com', 'b@example.com']);
    expect(notes.every((n) => n.kind === 'insufficient_credits')).toBe(true);
    expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(0);
  });

  it('ends a fine-tune whose provider job is gone with the provider message, and queues settlement', async () => {
    await seedLicense(rig.db, 'lic-gone', 0n);
    const datasetId = await seedReadyDataset(rig.db, {
      licenseId: 'lic-gone',
      storage: rig.files.storage,
      autoTrain: false,
    });
    const fineTuneId = randomUUID();
    await rig.db
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
    await rig.pipeline.stage('poller').publisher.publish(poll.queue, poll.jobId, poll.payload);
    const done = await untilFinished(fineTuneId);
    expect(done.status).toBe('failed');
    expect(done.errorCode).toBe('provider_error');
    expect(done.errorMessage).toMatch(/404/);
    expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(1);
  });
});

describe('first poll of a new job', () => {
  it('comes after firstPollDelayMs: next_poll_at and the queued poll are both delayed', async () => {
    // Uploader and trainer only, the first poll one minute away: nothing polls during the test.
    const delayed = await startPipelineWithLatePolls(['uploader', 'trainer']);
    try {
      const recorded = await recordedFineTune(rig, 'lic-first-poll', { on: delayed });
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
      const recorded = await recordedFineTune(rig, 'lic-together', { on: together });
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
      expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(1);
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
    await rig.db
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
  async function runTrainer(fineTuneId: string, profile: RigProvider) {
    const message = fineTuneCreateMessage({ fineTuneId, correlationId: 'corr-errors' });
    const ctx = {
      queue: 'finetune-create' as const,
      jobId: message.jobId,
      attempt: 1,
      correlationId: 'corr-errors',
      log: quietLog,
    };
    await trainerStage.handle(message.payload, ctx, {
      db: rig.db,
      log: quietLog,
      provider: profile,
      reservationMarginPercent: 10,
      firstPollDelayMs: 60_000,
    });
  }

  it('a bad key (401) is retried, not an ending: the fine-tune keeps its reservation until the key works', async () => {
    const fineTuneId = await pendingFineTune('lic-bad-key');
    const badKey = makeProvider({ baseURL: rig.sim.url, apiKey: 'sk-wrong' });
    const err = await runTrainer(fineTuneId, badKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: 'auth', status: 401 });
    expect(err).not.toBeInstanceOf(PermanentError);
    expect(await getFineTune(rig.db, fineTuneId)).toMatchObject({ status: 'creating', creditsReserved: 30n });
    expect(await getBalance(rig.db, 'lic-bad-key')).toMatchObject({ pending: 30n });
    expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(0);
    // The key is fixed: the retry creates the job.
    await runTrainer(fineTuneId, rig.provider);
    expect(jobsFor(fineTuneId)).toHaveLength(1);
    expect((await getFineTune(rig.db, fineTuneId))?.providerJobId).toBe(jobsFor(fineTuneId)[0]?.id);
  });

  it('a refused job (400) ends the fine-tune failed with the provider message and queues one settlement', async () => {
    const fineTuneId = await pendingFineTune('lic-refused', 'gpt-unknown');
    await runTrainer(fineTuneId, rig.provider);
    expect(await getFineTune(rig.db, fineTuneId)).toMatchObject({
      status: 'failed',
      errorCode: 'provider_rejected',
      errorMessage: expect.stringMatching(/400.*gpt-unknown is not available for fine-tuning/),
    });
    expect(jobsFor(fineTuneId)).toHaveLength(0);
    expect(await settleMessages(rig.db, fineTuneId)).toHaveLength(1);
  });
});
