import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { billingStage } from '@tuneline/billing';
import { type DatasetStorage, findBaseModel, LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import type { Db } from '@tuneline/db';
import { type EvaluatorDeps, evaluatorStage } from '@tuneline/evaluator';
import { grantCredits } from '@tuneline/ledger';
import { notifierStage, smtpMailer } from '@tuneline/notifier';
import { type PollerProvider, type PollScheduleConfig, pollerStage, Sweeper } from '@tuneline/poller';
import { createLogger, type RunningStage } from '@tuneline/runtime';
import { type TrainerProvider, trainerStage } from '@tuneline/trainer';
import { type UploaderProvider, uploaderStage } from '@tuneline/uploader';
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
  const correlationId = `corr-${requestId}`;
  const request = await db
    .insertInto('fine_tune_requests')
    .values({
      license_id: opts.licenseId,
      request_id: requestId,
      content_hash: randomBytes(32).toString('hex'),
      correlation_id: correlationId,
      payload: JSON.stringify({}),
      status: 'built',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const id = randomUUID();
  const trainKey = `datasets/${id}/train.jsonl`;
  await writeKey(opts.storage, trainKey, trainingJsonl(opts.examples ?? 12, id.slice(0, 8)));
  let testKey: string | null = null;
  if (opts.testExamples) {
    testKey = `datasets/${id}/test.jsonl`;
    await writeKey(opts.storage, testKey, trainingJsonl(opts.testExamples, `t-${id.slice(0, 8)}`));
  }
  const hash = randomBytes(32).toString('hex');
  await db
    .insertInto('datasets')
    .values({
      id,
      request_row_id: request.id,
      license_id: opts.licenseId,
      correlation_id: correlationId,
      base_model: opts.baseModel ?? 'gpt-4o-mini-2024-07-18',
      status: 'ready',
      dump: 'mapped',
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
    })
    .execute();
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
  const providers = opts.providers ? { providers: opts.providers } : {};
  const wanted = opts.stages ?? ['uploader', 'trainer', 'poller'];
  const stages: Pipeline['stages'] = {};
  if (wanted.includes('uploader')) {
    stages.uploader = await runner.start(uploaderStage, {
      db: opts.db,
      log: quietLog,
      provider: opts.provider,
      ...providers,
      storage: opts.storage,
      priceOf: (model: string) => findBaseModel(model)?.creditsPerMillionTrainingTokens,
      processTimeoutMs: 30_000,
    });
  }
  if (wanted.includes('trainer')) {
    stages.trainer = await runner.start(trainerStage, {
      db: opts.db,
      log: quietLog,
      provider: opts.provider,
      ...providers,
      reservationMarginPercent: 10,
      // Polled at once, as most tests here follow a job without webhooks.
      firstPollDelayMs: opts.firstPollDelayMs ?? 0,
    });
  }
  if (wanted.includes('poller')) {
    stages.poller = await runner.start(pollerStage, {
      db: opts.db,
      log: quietLog,
      provider: pollerProvider,
      ...providers,
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

/**
 * The stages around the provider ones (startPipeline's), as their services start them: the dataset
 * builder, billing, the evaluator (the e-mail of a fine-tune with a testing file waits for it) and the
 * notifier, sending to `smtpUrl`.
 */
export async function startOuterStages(
  runner: StageRunner,
  opts: {
    db: Db;
    storage: DatasetStorage;
    provider: EvaluatorDeps['provider'];
    /** Several providers: the evaluator asks each model at its fine-tune's provider. */
    providers?: EvaluatorDeps['providers'];
    smtpUrl: string;
    evaluation?: Partial<EvaluationSettings>;
    /** The hub's address the e-mails link to. */
    publicUrl?: string;
  },
): Promise<void> {
  const { db, storage } = opts;
  await runner.start(datasetBuilderStage, { db, log: quietLog, storage, catalogue: loadCatalogue({}) });
  await runner.start(billingStage, { db, log: quietLog });
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
  await runner.start(notifierStage, {
    db,
    log: quietLog,
    mailer: smtpMailer(opts.smtpUrl, { timeoutMs: 5_000 }),
    mailFrom: 'tuneline@example.com',
    ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
  });
}
