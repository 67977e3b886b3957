import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { billingStage, inferenceUsageStage } from '@tuneline/billing';
import {
  billingSettleJobId,
  type Clock,
  type EnqueueResult,
  type FineTuneRequestInput,
  FineTuneRequestProducer,
  filesUploadMessage,
} from '@tuneline/contracts';
import { type DatasetStorage, findBaseModel, LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { retrainCheckStage } from '@tuneline/dataset-builder/retrain';
import type { DatasetStatus, Db } from '@tuneline/db';
import { type EvaluatorDeps, evaluatorStage } from '@tuneline/evaluator';
import type { ReceivedMail, SmtpTestServer } from '@tuneline/harness';
import { grantCredits } from '@tuneline/ledger';
import { lifecycleSweepStage, notifierStage, smtpMailer } from '@tuneline/notifier';
import {
  type DeploymentDeps,
  deploymentSweepStage,
  modelDeploymentStage,
  type PollerProvider,
  type PollScheduleConfig,
  pollerStage,
  Sweeper,
} from '@tuneline/poller';
import { AzureDeployments, azureManagementFromEnv, providerEnvSchema } from '@tuneline/provider';
import { createLogger, type RunningStage } from '@tuneline/runtime';
import { type TrainerProvider, trainerStage } from '@tuneline/trainer';
import { type UploaderProvider, uploaderStage } from '@tuneline/uploader';
import type { Redis } from 'ioredis';
import { waitFor } from '../support/context.ts';
import { insertDatasetRow } from '../support/rows.ts';
import { StageRunner } from '../support/stage-runner.ts';
import { CountingProvider } from './counting-provider.ts';

export { StageRunner };

/** A chat fine-tuning file the simulator accepts: `n` examples. */
export function trainingJsonl(n: number, tag = 'doc'): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'Extract the invoice fields as JSON.' },
          { role: 'user', content: `Invoice ${tag}-${i} total ${100 + i} EUR from ACME ${i}` },
          { role: 'assistant', content: JSON.stringify({ total: 100 + i, supplier: `ACME ${i}` }) },
        ],
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface StorageFixture {
  storage: LocalFileStorage;
  dir: string;
  cleanup(): void;
}

export function tempStorage(): StorageFixture {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-stages-'));
  return {
    storage: new LocalFileStorage(dir),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function writeKey(storage: DatasetStorage, key: string, content: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const out = storage.createWriteStream(key);
    out.on('error', reject);
    out.end(content, () => resolve());
  });
}

export interface SeedDatasetOptions {
  licenseId: string;
  storage: DatasetStorage;
  autoTrain?: boolean;
  examples?: number;
  testExamples?: number;
  estimatedCredits?: bigint;
  job?: Record<string, unknown>;
  baseModel?: string;
}

/** A `ready` dataset (and the request row it hangs off), its files written to storage. */
export async function seedReadyDataset(db: Db, opts: SeedDatasetOptions): Promise<string> {
  const requestId = `req-${randomBytes(6).toString('hex')}`;
  const id = randomUUID();
  const trainKey = `datasets/${id}/train.jsonl`;
  await writeKey(opts.storage, trainKey, trainingJsonl(opts.examples ?? 12, id.slice(0, 8)));
  let testKey: string | null = null;
  if (opts.testExamples) {
    testKey = `datasets/${id}/test.jsonl`;
    await writeKey(opts.storage, testKey, trainingJsonl(opts.testExamples, `t-${id.slice(0, 8)}`));
  }
  const hash = randomBytes(32).toString('hex');
  await insertDatasetRow(
    db,
    opts.licenseId,
    {
      id,
      base_model: opts.baseModel ?? 'gpt-4o-mini-2024-07-18',
      status: 'ready',
      test_percent: 0,
      content_hash: hash,
      short_hash: hash.slice(0, 8),
      train_path: trainKey,
      test_path: testKey,
      train_examples: opts.examples ?? 12,
      test_examples: opts.testExamples ?? 0,
      train_tokens: 1000,
      epochs: 9,
      estimated_billed_tokens: 9000,
      estimated_credits: (opts.estimatedCredits ?? 27n).toString(),
      auto_train: opts.autoTrain ?? true,
      job_options: JSON.stringify(
        opts.job ?? { description: 'stage test', notifyEmails: 'ops@example.com', hyperparameters: 'auto' },
      ),
    },
    {
      request_id: requestId,
      content_hash: randomBytes(32).toString('hex'),
      correlation_id: `corr-${requestId}`,
    },
  );
  return id;
}

export async function seedLicense(db: Db, licenseId: string, credits: bigint): Promise<void> {
  await db
    .insertInto('licenses')
    .values({ id: licenseId, name: licenseId })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  if (credits > 0n) {
    await db.transaction().execute((tx) =>
      grantCredits(tx, {
        grantId: `seed-${licenseId}-${randomBytes(4).toString('hex')}`,
        licenseId,
        amount: credits,
      }),
    );
  }
}

export const quietLog = createLogger('stages-test', 'silent');

/**
 * Enqueues a fine-tune request the way upstream apps do, through the typed producer on `prefix`; throws,
 * naming the fields, when the producer refuses it.
 */
export async function enqueueRequest(
  queue: { redis: Redis; prefix: string },
  input: FineTuneRequestInput,
  correlationId?: string,
): Promise<Extract<EnqueueResult, { ok: true }>> {
  const producer = new FineTuneRequestProducer({ connection: queue.redis, prefix: queue.prefix });
  try {
    const result = await producer.enqueue(input, correlationId ? { correlationId } : {});
    if (!result.ok) throw new Error(result.message);
    return result;
  } finally {
    await producer.close();
  }
}

/** Queues a dataset's upload the way the dataset builder does (the pipeline must run its uploader). */
export async function enqueueUpload(pipeline: Pipeline, datasetId: string): Promise<void> {
  const upload = filesUploadMessage({ datasetId, correlationId: `corr-${datasetId}` });
  await pipeline.stage('uploader').publisher.publish(upload.queue, upload.jobId, upload.payload);
}

/** Waits for a dataset of the license in `status` (the row as stored). */
export function datasetInStatus(
  db: Db,
  licenseId: string,
  status: DatasetStatus,
  timeoutMs: number,
  what: string,
) {
  const dataset = db
    .selectFrom('datasets')
    .selectAll()
    .where((eb) => eb.and({ license_id: licenseId, status }));
  return waitFor(() => dataset.executeTakeFirst(), timeoutMs, what);
}

/** Waits for the license's fine-tune to become available (the row as stored). */
export function availableFineTune(
  db: Db,
  licenseId: string,
  timeoutMs = 30_000,
  what = 'the model to become available',
) {
  return waitFor(
    async () =>
      db
        .selectFrom('fine_tunes')
        .selectAll()
        .where('license_id', '=', licenseId)
        .where('available', '=', true)
        .executeTakeFirst(),
    timeoutMs,
    what,
  );
}

/** Waits for an e-mail to `address`. */
export function mailTo(smtp: SmtpTestServer, address: string, timeoutMs = 10_000): Promise<ReceivedMail> {
  return waitFor(
    async () => smtp.received.find((m) => m.to.includes(address)),
    timeoutMs,
    `mail to ${address}`,
  );
}

/** The settlement messages the stages queued for a fine-tune (in the outbox). */
export function settleMessages(db: Db, fineTuneId: string) {
  return db
    .selectFrom('outbox')
    .selectAll()
    .where('queue', '=', 'billing-settle')
    .where('job_id', '=', billingSettleJobId(fineTuneId))
    .execute();
}

export type PipelineStage = 'uploader' | 'trainer' | 'poller';

export interface PipelineOptions {
  db: Db;
  /** Where a runner of the pipeline's own runs (both needed unless `runner` is given). */
  redisUrl?: string;
  prefix?: string;
  /** The provider profile (what every stage gets). */
  provider: PipelineProvider;
  /** Several providers: each row's named provider (rows naming none use `provider`). */
  providers?: { for(provider: string | null): PipelineProvider };
  storage: DatasetStorage;
  schedule?: Partial<PollScheduleConfig>;
  /** Stages to start; default all three. */
  stages?: PipelineStage[];
  /** Starts the stages on this runner (the `stages` fixture) instead of one of its own on `prefix`. */
  runner?: StageRunner;
  sweepMaxAgeMs?: number;
  /** The trainer's delay of a new job's first poll (default 0). */
  firstPollDelayMs?: number;
}

export type PipelineProvider = UploaderProvider & TrainerProvider & PollerProvider;

export interface Pipeline {
  runner: StageRunner;
  pollerProvider: CountingProvider;
  sweeper: Sweeper;
  stages: Partial<Record<PipelineStage, RunningStage>>;
  /** A started stage; throws, naming the stages that did start, when this pipeline did not start it. */
  stage(name: PipelineStage): RunningStage;
  close(): Promise<void>;
}

function ownRunner(opts: PipelineOptions): StageRunner {
  if (!opts.redisUrl || !opts.prefix) throw new Error('startPipeline needs a runner, or redisUrl and prefix');
  return new StageRunner(opts.redisUrl, opts.prefix);
}

export async function startPipeline(opts: PipelineOptions): Promise<Pipeline> {
  const runner = opts.runner ?? ownRunner(opts);
  const schedule: PollScheduleConfig = {
    intervalMs: 20 * 60_000,
    minIntervalMs: 2 * 60_000,
    finishGraceMs: 5_000,
    ...opts.schedule,
  };
  const pollerProvider = new CountingProvider(opts.provider);
  const sweeper = new Sweeper({
    db: opts.db,
    provider: pollerProvider,
    log: quietLog,
    schedule,
    maxAgeMs: opts.sweepMaxAgeMs ?? 200,
    maxPages: 20,
    ...(opts.providers ? { follows: (row: { provider: string | null }) => row.provider === null } : {}),
  });
  // What every provider stage gets; the poller's provider counts its calls.
  const common = {
    db: opts.db,
    log: quietLog,
    provider: opts.provider,
    ...(opts.providers ? { providers: opts.providers } : {}),
  };
  const wanted = opts.stages ?? ['uploader', 'trainer', 'poller'];
  const stages: Pipeline['stages'] = {};
  if (wanted.includes('uploader')) {
    stages.uploader = await runner.start(uploaderStage, {
      ...common,
      storage: opts.storage,
      priceOf: (model: string) => findBaseModel(model)?.creditsPerMillionTrainingTokens,
      processTimeoutMs: 30_000,
    });
  }
  if (wanted.includes('trainer')) {
    stages.trainer = await runner.start(trainerStage, {
      ...common,
      reservationMarginPercent: 10,
      // Polled at once, as most tests here follow a job without webhooks.
      firstPollDelayMs: opts.firstPollDelayMs ?? 0,
    });
  }
  if (wanted.includes('poller')) {
    stages.poller = await runner.start(pollerStage, {
      ...common,
      provider: pollerProvider,
      sweeper,
      schedule,
    });
  }
  const stage = (name: PipelineStage): RunningStage => {
    const running = stages[name];
    if (!running) {
      const started = Object.keys(stages).join(', ') || 'none';
      throw new Error(`the ${name} stage was not started in this pipeline (started: ${started})`);
    }
    return running;
  };
  return { runner, pollerProvider, sweeper, stages, stage, close: () => runner.closeAll() };
}

type EvaluationSettings = Pick<EvaluatorDeps, 'timeLimitMs' | 'concurrency' | 'callAttempts' | 'maxTokens'>;

/** Every stage of the dataset-builder, billing, evaluator and notifier services, as their main.ts start them. */
export const EVERY_OUTER_STAGE = [
  'dataset-builder',
  'retrain-check',
  'billing',
  'inference-usage',
  'evaluator',
  'notifier',
  'lifecycle-sweep',
  'model-deployment',
  'deployment-sweep',
] as const;

/** The stages around the provider ones, named by what they consume. */
export type OuterStage = (typeof EVERY_OUTER_STAGE)[number];

/** What startOuterStages starts unless told otherwise. */
export const DEFAULT_OUTER_STAGES: readonly OuterStage[] = [
  'dataset-builder',
  'billing',
  'evaluator',
  'notifier',
];

export interface OuterStagesOptions {
  db: Db;
  storage: DatasetStorage;
  /** The evaluator's provider (needed when the evaluator runs). */
  provider?: EvaluatorDeps['provider'];
  /** Several providers: the evaluator asks each model at its fine-tune's own (as its main.ts does). */
  providers?: EvaluatorDeps['providers'];
  /** Where the notifier sends (needed when the notifier or the lifecycle sweep runs). */
  smtpUrl?: string;
  evaluation?: Partial<EvaluationSettings>;
  /** The hub's address the e-mails link to. */
  publicUrl?: string;
  /** Which to start, in this order (default DEFAULT_OUTER_STAGES). */
  stages?: readonly OuterStage[];
}

/**
 * The stages around the provider ones (startPipeline's), as their services start them: by default the
 * dataset builder, billing, the evaluator (the e-mail of a fine-tune with a testing file waits for it) and
 * the notifier, sending to `smtpUrl`.
 */
export async function startOuterStages(runner: StageRunner, opts: OuterStagesOptions): Promise<void> {
  const { db, storage } = opts;
  const wanted = opts.stages ?? DEFAULT_OUTER_STAGES;
  const builderDeps = { db, log: quietLog, storage, catalogue: loadCatalogue({}) };
  const notifierDeps = () => {
    if (!opts.smtpUrl) throw new Error('the notifier stages need smtpUrl');
    return {
      db,
      log: quietLog,
      mailer: smtpMailer(opts.smtpUrl, { timeoutMs: 5_000 }),
      mailFrom: 'tuneline@example.com',
      ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
    };
  };
  for (const name of wanted) {
    if (name === 'dataset-builder') await runner.start(datasetBuilderStage, builderDeps);
    if (name === 'retrain-check') await runner.start(retrainCheckStage, builderDeps);
    if (name === 'billing') await runner.start(billingStage, { db, log: quietLog });
    if (name === 'inference-usage') await runner.start(inferenceUsageStage, { db, log: quietLog });
    if (name === 'evaluator') {
      if (!opts.provider) throw new Error('the evaluator stage needs a provider');
      await runner.start(evaluatorStage, {
        db,
        log: quietLog,
        provider: opts.provider,
        ...(opts.providers ? { providers: opts.providers } : {}),
        storage,
        timeLimitMs: 60_000,
        concurrency: 4,
        callAttempts: 3,
        maxTokens: 512,
        ...opts.evaluation,
      });
    }
    if (name === 'notifier') await runner.start(notifierStage, notifierDeps());
    if (name === 'lifecycle-sweep') await runner.start(lifecycleSweepStage, notifierDeps());
    // The poller's deployment stages (beside its polls, which startPipeline starts); no Azure here.
    const deploymentDeps = { db, log: quietLog, deploymentsProblem: 'no Azure deployments in this rig' };
    if (name === 'model-deployment') await runner.start(modelDeploymentStage, deploymentDeps);
    if (name === 'deployment-sweep') await runner.start(deploymentSweepStage, deploymentDeps);
  }
}

/**
 * The poller's deployment stage on a simulator's ARM (Azure deployments), as the poller's main.ts finds
 * it without real credentials, dated by `clock` (the one the deployments are created by). Returns its
 * deps (for the sweep, say).
 */
export async function startSimulatorDeployments(
  runner: StageRunner,
  db: Db,
  sim: { url: string; apiKey: string },
  clock: Clock,
): Promise<DeploymentDeps> {
  const management = azureManagementFromEnv(
    providerEnvSchema.parse({ SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
    { pollIntervalMs: 20 },
  );
  if (!management.ok) throw new Error(management.problem);
  const deps = {
    db,
    log: quietLog,
    deployments: new AzureDeployments(management.settings),
    clock,
    deploymentPollMs: 50,
  };
  await runner.start(modelDeploymentStage, deps);
  return deps;
}
