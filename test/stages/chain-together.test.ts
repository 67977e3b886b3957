import { fineTuneRequestMessage } from '@tuneline/contracts';
import { startSmtpServer } from '@tuneline/harness';
import { getBalance } from '@tuneline/ledger';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { mimeParts } from '../evaluator/support.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import {
  type Pipeline,
  type StorageFixture,
  seedLicense,
  startOuterStages,
  startPipeline,
  tempStorage,
} from './harness.ts';

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
  const together = createProvider(
    providerEnvSchema.parse({
      PROVIDER: 'together',
      TOGETHER_API_KEY: sim.apiKey,
      TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
    }),
  );
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider: together,
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await startOuterStages(pipeline.runner, {
    db: tdb.db,
    storage: files.storage,
    provider: together,
    smtpUrl: smtp.url,
  });
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
  await tdb?.drop();
});

describe('six stages in-process with the together profile', () => {
  it('takes a request for a Together model to an available model, charged once for the tokens Together reports, with an e-mail', async () => {
    await seedLicense(tdb.db, 'lic-chain', 1_000_000n);
    const input = requestInput({
      requestId: 'chain-tg-1',
      licenseId: 'lic-chain',
      baseModel: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference',
      testPercent: 10,
      autoTrain: true,
      job: { description: 'chain test', notifyEmails: 'owner@example.com', hyperparameters: 'auto' },
    });
    const request = fineTuneRequestMessage({ request: input, correlationId: 'corr-chain-tg-1' });
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
    // Plain text with an HTML alternative: the text part names the model.
    expect(mimeParts(mail.raw)['text/plain']).toContain(fineTune.fine_tuned_model ?? 'no model name');
    const transfers = await tdb.db
      .selectFrom('ledger_transfers')
      .select(['kind'])
      .where('fine_tune_id', '=', fineTune.id)
      .execute();
    // Training: one reservation and its post, the rest held for the evaluation; the evaluation: one charge.
    expect(transfers.map((t) => t.kind).sort()).toEqual(['evaluation', 'evaluation_hold', 'post', 'reserve']);
    const balance = await getBalance(tdb.db, 'lic-chain');
    expect(balance.pending).toBe(0n);
    // One Together job for this fine-tune, found by the tag in its suffix; billed for its token_count.
    const jobs = sim.admin.together().jobs.filter((j) => j.suffix?.endsWith(`tl-${fineTune.id}`));
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.status).toBe('completed');
    expect(fineTune.provider_job_id).toBe(jobs[0]?.id);
    expect(fineTune.fine_tuned_model).toBe(jobs[0]?.model_output_name);
    expect(Number(fineTune.trained_tokens)).toBe(jobs[0]?.token_count);
    expect(BigInt(fineTune.credits_charged ?? '0')).toBe(
      (BigInt(jobs[0]?.token_count ?? 0) * 480n + 999_999n) / 1_000_000n,
    );
    // No webhook ever came: adaptive polling followed the job.
    expect(sim.admin.state().jobs).toHaveLength(0);
  });
});
