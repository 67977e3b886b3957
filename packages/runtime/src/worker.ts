import type { QueueName } from '@tuneline/contracts';
import { countDeadLetters, type OutboxDispatch } from '@tuneline/db';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type BaseConfig, baseConfigSchema } from './config.ts';
import type { Logger } from './logger.ts';
import { type Metrics, QUEUE_STATES } from './metrics.ts';
import { OutboxPublisher } from './outbox-publisher.ts';
import { Publisher } from './publisher.ts';
import { RecoverySweeper, type SweepResult } from './recovery-sweeper.ts';
import type { Stage, StageDeps } from './stage.ts';
import { stageProcessor } from './stage-processor.ts';

export interface RunningStage {
  worker: Worker;
  publisher: Publisher;
  /** Publishes committed outbox rows now (also runs on a timer). */
  relayOutbox(): Promise<number>;
  /**
   * Publishes rows an `OutboxCapture` collected (committed by this process just now) and marks them
   * published in the background. Never throws: what fails here is left to the relay.
   */
  publishCaptured(rows: readonly OutboxDispatch[], log?: Logger): Promise<void>;
  /** Runs the recovery sweep now (also runs on start-up and on a timer); returns how many rows wait on the stage. */
  recover(): Promise<number>;
  /** The same sweep, saying what it did (re-enqueued, dead-lettered, skipped as dead-lettered). */
  recoverDetailed(): Promise<SweepResult>;
  /** Stops taking jobs and waits for in-flight ones up to `timeoutMs`, then releases them. */
  close(timeoutMs: number): Promise<{ drained: boolean }>;
}

interface StageOptions<D extends StageDeps> {
  config: Pick<
    BaseConfig,
    'QUEUE_PREFIX' | 'WORKER_CONCURRENCY' | 'RECOVERY_INTERVAL_MS' | 'OUTBOX_INTERVAL_MS'
  > &
    Partial<Pick<BaseConfig, 'JOB_LOCK_MS' | 'RECOVERY_MAX_RETRIES'>>;
  deps: D;
  /** The blocking connection the worker uses (maxRetriesPerRequest: null). */
  workerConnection: Redis;
  metrics?: Metrics;
  /** Skip the periodic timers and the start-up sweep (tests drive relay and recovery by hand). */
  timers?: boolean;
}

export type StartStageOptions<D extends StageDeps> = StageOptions<D> &
  (
    | {
        /** The connection for adding jobs: the stage publishes through an outbox publisher of its own. */
        producerConnection: Redis;
        outbox?: never;
      }
    | {
        /** The process's outbox publisher, shared by its stages; whoever made it runs its timer and closes it. */
        outbox: OutboxPublisher;
        producerConnection?: never;
      }
  );

/**
 * Consumes the stage's queue: a BullMQ worker around the stage's processor, the recovery sweeper
 * (at start-up and every RECOVERY_INTERVAL_MS) and, unless the process shares one, an outbox
 * publisher whose relay runs every OUTBOX_INTERVAL_MS.
 */
export async function startStage<Q extends QueueName, D extends StageDeps>(
  stage: Stage<Q, D>,
  opts: StartStageOptions<D>,
): Promise<RunningStage> {
  const { deps, metrics, config } = opts;
  const ownsOutbox = !opts.outbox;
  const outbox =
    opts.outbox ??
    new OutboxPublisher(
      deps.db,
      deps.log,
      new Publisher(opts.producerConnection, config.QUEUE_PREFIX),
      metrics,
    );
  const { publisher } = outbox;
  // Without RECOVERY_MAX_RETRIES (a hand-built config) the schema's default applies: never uncapped.
  const maxRetries =
    config.RECOVERY_MAX_RETRIES ?? baseConfigSchema.shape.RECOVERY_MAX_RETRIES.parse(undefined);
  const sweeper = new RecoverySweeper(stage, deps, publisher, metrics, maxRetries);
  const queue = publisher.queue(stage.queue);

  const worker = new Worker(stage.queue, stageProcessor(stage, { deps, outbox, queue, metrics }), {
    connection: opts.workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    // BullMQ checks the queue's rate-limit key (set by `queue.rateLimit` on a 429) only for workers
    // with a limiter; without one a 429 paused this worker alone, and its other slots and every other
    // process kept calling the provider. The bound itself is far above any real rate.
    limiter: { max: 1_000_000, duration: 1_000 },
    ...(config.JOB_LOCK_MS ? { lockDuration: config.JOB_LOCK_MS, stalledInterval: config.JOB_LOCK_MS } : {}),
    autorun: false,
  });
  worker.on('error', (err) => deps.log.error({ err: err.message, queue: stage.queue }, 'worker error'));
  worker.on('completed', () => metrics?.jobs.inc({ queue: stage.queue, outcome: 'completed' }));
  worker.on('failed', (job, err) => {
    if (!job || err.name === 'RateLimitError') return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics?.jobs.inc({ queue: stage.queue, outcome: final ? 'failed' : 'retried' });
  });

  metrics?.trackQueueDepth(stage.queue, () => queue.getJobCounts(...QUEUE_STATES));
  metrics?.trackDeadLetters(
    stage.queue,
    async () => (await countDeadLetters(deps.db, [stage.queue]))[stage.queue] ?? 0,
  );

  if (opts.timers !== false) {
    if (ownsOutbox) outbox.startTimer(config.OUTBOX_INTERVAL_MS);
    sweeper.startTimer(config.RECOVERY_INTERVAL_MS);
    // Start-up sweep: whatever was waiting while we were down (or lost with Redis) is queued again.
    await sweeper
      .sweep()
      .catch((err: unknown) => deps.log.warn({ err: String(err) }, 'start-up recovery failed'));
  }
  void worker.run();
  await worker.waitUntilReady();

  return {
    worker,
    publisher,
    relayOutbox: () => outbox.relay(),
    publishCaptured: (rows, log) => outbox.publishCaptured(rows, log),
    recover: () => sweeper.sweep(),
    recoverDetailed: () => sweeper.sweepDetailed(),
    async close(timeoutMs: number) {
      sweeper.stop();
      if (ownsOutbox) outbox.stopTimer();
      const { drained } = await closeWorker(worker, timeoutMs);
      if (ownsOutbox) {
        await outbox.close();
        await publisher.close();
      }
      return { drained };
    },
  };
}

/** Waits up to `timeoutMs` for in-flight jobs; after that they are abandoned (their locks lapse and another worker takes them). */
async function closeWorker(worker: Worker, timeoutMs: number): Promise<{ drained: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([worker.close().then(() => 'drained' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') await worker.close(true);
  return { drained: outcome === 'drained' };
}
