// Poller figures: provider calls per running job per poll sweep (200 running jobs, target <= 0.05),
// against a baseline of one retrieve per job measured in the same run; and the time from the
// simulator finishing a job to billing having settled it (the model available), with webhooks and
// with polling only.
import { randomBytes, randomUUID } from 'node:crypto';
import { billingStage } from '@tuneline/billing';
import { filesUploadMessage } from '@tuneline/contracts';
import { autoTrainFineTuneId, type Db } from '@tuneline/db';
import { Sweeper, startWebhookServer } from '@tuneline/poller';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { CountingProvider } from '../test/stages/counting-provider.ts';
import {
  quietLog,
  seedLicense,
  seedReadyDataset,
  startPipeline,
  tempStorage,
  trainingJsonl,
} from '../test/stages/harness.ts';
import { makeProvider } from '../test/stages/provider.ts';
import { requireServers, scratchDatabase } from './support.ts';

const RUNNING_JOBS = 200;
const LATENCY_JOBS = 8;
const TARGET_CALLS_PER_JOB = 0.05;
const SECRET = `whsec_${Buffer.from('tuneline-bench-webhook-secret-32').toString('base64')}`;

const { baseUrl, redisUrl } = requireServers('poller.bench');

const freshDatabase = () => scratchDatabase(baseUrl, 'poller', 20);

const schedule = { intervalMs: 20 * 60_000, minIntervalMs: 2 * 60_000, finishGraceMs: 5_000 };

/** 200 fine-tunes whose provider jobs are alive (at speed 1 a job validates for 30 s, then queues). */
async function sweepFigures(db: Db): Promise<void> {
  const sim = await startSimulator({ port: 0, seed: 7, speed: 1 });
  try {
    const provider = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey });
    await seedLicense(db, 'bench-sweep', 0n);
    const files = tempStorage();
    const datasetId = await seedReadyDataset(db, {
      licenseId: 'bench-sweep',
      storage: files.storage,
      autoTrain: false,
    });
    const content = trainingJsonl(12);
    const file = await provider.uploadFile({
      filename: `${datasetId}-train.jsonl`,
      content: Buffer.from(content),
      size: Buffer.byteLength(content),
    });
    await provider.waitUntilProcessed(file.id, { timeoutMs: 30_000 });
    const rows: { id: string; jobId: string }[] = [];
    for (let i = 0; i < RUNNING_JOBS; i++) {
      const id = randomUUID();
      const job = await provider
        .createJob({ model: 'gpt-4o-mini-2024-07-18', trainingFile: file.id, metadata: { fine_tune_id: id } })
        .catch(() => null);
      if (!job) break;
      rows.push({ id, jobId: job.id });
    }
    if (rows.length < RUNNING_JOBS) {
      console.log(`only ${rows.length} jobs could be created (file not processed yet?)`);
    }
    const sample = await provider.retrieveJob(rows[0]?.jobId ?? '');
    for (const r of rows) {
      await db
        .insertInto('fine_tunes')
        .values({
          id: r.id,
          license_id: 'bench-sweep',
          dataset_id: datasetId,
          correlation_id: 'bench',
          base_model: 'gpt-4o-mini-2024-07-18',
          status: sample.status === 'queued' ? 'queued' : 'validating_files',
          description: '',
          notify_emails: [],
          suffix: 'bench',
          hyperparameters: JSON.stringify('auto'),
          credits_per_million_tokens: '3000',
          provider_job_id: r.jobId,
        })
        .execute();
    }

    // Baseline: one retrieve per running job.
    const naive = new CountingProvider(provider);
    let t = performance.now();
    for (const r of rows) await naive.retrieveJob(r.jobId);
    const naiveMs = performance.now() - t;

    const counted = new CountingProvider(provider);
    const sweeper = new Sweeper({
      db,
      provider: counted,
      log: quietLog,
      schedule,
      maxAgeMs: 30_000,
      maxPages: 20,
    });
    t = performance.now();
    await sweeper.sweep();
    const sweepMs = performance.now() - t;
    const stats = sweeper.lastStats;
    // Every scheduled poll in the next 30 s reads that snapshot: no further calls.
    for (const r of rows) await sweeper.jobState(r.jobId);
    const perJob = counted.calls / rows.length;
    console.log(`running jobs: ${rows.length}`);
    console.log(
      `baseline (retrieve per job): ${naive.calls} calls, ${(naive.calls / rows.length).toFixed(3)} per job, ${naiveMs.toFixed(0)} ms`,
    );
    console.log(
      `sweep (list, 100 a page): ${counted.calls} calls (${JSON.stringify(counted.byMethod)}), ${perJob.toFixed(3)} per job, ${sweepMs.toFixed(0)} ms; found ${stats?.found}/${stats?.followed}`,
    );
    console.log(`ratio sweep/baseline calls: ${(counted.calls / naive.calls).toFixed(3)}`);
    console.log(
      perJob <= TARGET_CALLS_PER_JOB
        ? `target <= ${TARGET_CALLS_PER_JOB} calls per running job per sweep: met`
        : `TARGET MISSED: ${perJob.toFixed(3)} > ${TARGET_CALLS_PER_JOB} calls per running job per sweep`,
    );
    files.cleanup();
  } finally {
    await sim.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** Time from the simulator ending each job to the fine-tune row being terminal. */
async function latency(db: Db, mode: 'webhooks' | 'polling'): Promise<number[]> {
  const prefix = `tlbench-${randomBytes(4).toString('hex')}`;
  const files = tempStorage();
  let pipelineRef: Awaited<ReturnType<typeof startPipeline>> | undefined;
  let provider: ReturnType<typeof makeProvider> | undefined;
  const hooks =
    mode === 'webhooks'
      ? await startWebhookServer({
          db,
          log: quietLog,
          port: 0,
          unwrap: (body, headers) =>
            (provider as ReturnType<typeof makeProvider>).unwrapWebhook(body, headers),
          publish: async (rows) => pipelineRef?.stages.poller?.publishCaptured(rows),
        })
      : null;
  const sim: RunningSimulator = await startSimulator({
    port: 0,
    seed: mode === 'webhooks' ? 8 : 9,
    speed: 100,
    ...(hooks ? { webhookUrl: hooks.url, webhookSecret: SECRET } : {}),
  });
  provider = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey, webhookSecret: SECRET });
  // Polling only: a 2 s interval stands in for the 20-minute default (latency scales with it).
  const pollSchedule =
    mode === 'webhooks'
      ? { intervalMs: 20 * 60_000, minIntervalMs: 20 * 60_000 }
      : { intervalMs: 2_000, minIntervalMs: 2_000, finishGraceMs: 0 };
  const pipeline = await startPipeline({
    db,
    redisUrl: redisUrl,
    prefix,
    provider,
    storage: files.storage,
    schedule: pollSchedule,
  });
  pipelineRef = pipeline;
  await pipeline.runner.start(billingStage, { db, log: quietLog });
  try {
    const license = `bench-${mode}`;
    await seedLicense(db, license, 1_000_000n);
    // One job at a time, so no other job's poll refreshes this one through a shared sweep.
    const ids: string[] = [];
    const simEnded = new Map<string, number>();
    const rowEnded = new Map<string, number>();
    for (let i = 0; i < LATENCY_JOBS; i++) {
      const datasetId = await seedReadyDataset(db, { licenseId: license, storage: files.storage });
      const upload = filesUploadMessage({ datasetId, correlationId: 'bench' });
      await pipeline.stages.uploader?.publisher.publish(upload.queue, upload.jobId, upload.payload);
      const id = autoTrainFineTuneId(datasetId);
      ids.push(id);
      const deadline = Date.now() + 60_000;
      while (!rowEnded.has(id) && Date.now() < deadline) {
        const now = Date.now();
        const job = sim.admin.state().jobs.find((j) => j.metadata?.fine_tune_id === id);
        if (job && !simEnded.has(id) && ['succeeded', 'failed', 'cancelled'].includes(job.status))
          simEnded.set(id, now);
        // Done when billing has settled it (for a success: the model is available).
        const row = await db
          .selectFrom('fine_tunes')
          .select('settled_at')
          .where('id', '=', id)
          .executeTakeFirst();
        if (row?.settled_at) rowEnded.set(id, now);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    return ids
      .filter((id) => simEnded.has(id) && rowEnded.has(id))
      .map((id) => (rowEnded.get(id) ?? 0) - (simEnded.get(id) ?? 0));
  } finally {
    await pipeline.close();
    await sim.close();
    await hooks?.close();
    files.cleanup();
  }
}

const database = await freshDatabase();
try {
  await sweepFigures(database.db);
  const withHooks = await latency(database.db, 'webhooks');
  const pollingOnly = await latency(database.db, 'polling');
  console.log(
    `finish → settled (available) with webhooks (polling at 20 min): median ${median(withHooks)} ms, max ${Math.max(...withHooks)} ms over ${withHooks.length} jobs`,
  );
  console.log(
    `finish → settled (available) polling only (2 s interval): median ${median(pollingOnly)} ms, max ${Math.max(...pollingOnly)} ms over ${pollingOnly.length} jobs`,
  );
  console.log(
    `ratio webhooks/polling median latency: ${(median(withHooks) / median(pollingOnly)).toFixed(3)}`,
  );
  if (withHooks.length < LATENCY_JOBS || pollingOnly.length < LATENCY_JOBS)
    console.log('TARGET MISSED: some jobs did not finish');
} finally {
  await database.drop();
}
process.exit(0);
