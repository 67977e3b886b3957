import {
  formatZodError,
  type MessageOf,
  type QueueName,
  queues,
  type ServiceName,
} from '@tuneline/contracts';
import {
  type Db,
  OutboxCapture,
  type OutboxDispatch,
  type OutboxMessage,
  relayOutbox,
  uncapturedOutboxWrites,
} from '@tuneline/db';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BaseConfig } from './config.ts';
import { PermanentError, RateLimitedError } from './errors.ts';
import type { Logger } from './logger.ts';
import { type Metrics, QUEUE_STATES } from './metrics.ts';
import { PublishedMarks } from './published-marks.ts';
import { Publisher } from './publisher.ts';

export interface JobContext {
  queue: QueueName;
  jobId: string;
  /** 1 on the first try. */
  attempt: number;
  correlationId: string;
  log: Logger;
}

/** Shared by every stage's handler: the database and the logger, plus the stage's own dependencies. */
export interface StageDeps {
  db: Db;
  log: Logger;
}

/**
 * One stage of the pipeline: the queue it consumes, its handler, and how to find, in Postgres, the
 * work waiting on it (so a Redis that lost its data is refilled).
 */
export interface Stage<Q extends QueueName, D extends StageDeps = StageDeps> {
  service: ServiceName;
  queue: Q;
  handle(message: MessageOf<Q>, ctx: JobContext, deps: D): Promise<void>;
  /** Messages for every row waiting on this stage; published with their deterministic job ids. */
  recover?(deps: D): Promise<OutboxMessage[]>;
}

export function defineStage<Q extends QueueName, D extends StageDeps>(stage: Stage<Q, D>): Stage<Q, D> {
  if (queues[stage.queue].consumer !== stage.service) {
    throw new Error(
      `service "${stage.service}" cannot consume "${stage.queue}": the catalogue gives it to "${queues[stage.queue].consumer}"`,
    );
  }
  return stage;
}

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
  /** Stops taking jobs and waits for in-flight ones up to `timeoutMs`, then releases them. */
  close(timeoutMs: number): Promise<{ drained: boolean }>;
}

export interface StartStageOptions<D extends StageDeps> {
  config: Pick<
    BaseConfig,
    'QUEUE_PREFIX' | 'WORKER_CONCURRENCY' | 'RECOVERY_INTERVAL_MS' | 'OUTBOX_INTERVAL_MS'
  > &
    Partial<Pick<BaseConfig, 'JOB_LOCK_MS'>>;
  deps: D;
  /** The blocking connection the worker uses (maxRetriesPerRequest: null). */
  workerConnection: Redis;
  /** The connection for adding jobs. */
  producerConnection: Redis;
  metrics?: Metrics;
  /** Skip the periodic timers (tests drive relay and recovery by hand). */
  timers?: boolean;
}

/**
 * The relay timer's rows must be at least this old: a live job publishes its own rows within
 * milliseconds of its commit, so the timer only picks up what a crashed or failed publish left.
 */
const RELAY_MIN_AGE_MS = 2_000;

/** Consumes the stage's queue: payloads parsed with the catalogue's schema, errors classified. */
export async function startStage<Q extends QueueName, D extends StageDeps>(
  stage: Stage<Q, D>,
  opts: StartStageOptions<D>,
): Promise<RunningStage> {
  const def = queues[stage.queue];
  const { deps, metrics } = opts;
  const publisher = new Publisher(opts.producerConnection, opts.config.QUEUE_PREFIX);
  const marks = new PublishedMarks(deps.db, deps.log);
  let relaying: Promise<number> | null = null;
  let relayAgain = false;

  const relayOnce = (minAgeMs: number) =>
    relayOutbox(
      deps.db,
      async (rows) => {
        await publisher.publishOutboxRows(rows);
        for (const row of rows) metrics?.outboxPublished.inc({ queue: row.queue });
      },
      { minAgeMs },
    );

  const publishCaptured = async (rows: readonly OutboxDispatch[], log: Logger = deps.log) => {
    if (rows.length === 0) return;
    try {
      await publisher.publishOutboxRows(rows);
    } catch (err) {
      log.warn({ err: String(err) }, 'publishing committed messages failed; the outbox relay will');
      return;
    }
    for (const row of rows) metrics?.outboxPublished.inc({ queue: row.queue });
    marks.add(rows.map((r) => r.id));
  };

  const relay = (minAgeMs = 0): Promise<number> => {
    // One relay at a time per process. A caller arriving while one runs may have committed after that
    // relay read the outbox, so the running relay goes round once more before its callers resume.
    if (relaying) {
      relayAgain = true;
      return relaying;
    }
    relaying = (async () => {
      let published = 0;
      do {
        relayAgain = false;
        published += await relayOnce(minAgeMs);
      } while (relayAgain);
      return published;
    })().finally(() => {
      relaying = null;
    });
    return relaying;
  };

  const recover = async (): Promise<number> => {
    if (!stage.recover) return 0;
    const listedAt = Date.now();
    const messages = await stage.recover(deps);
    let requeued = 0;
    for (const m of messages) {
      const outcome = await publisher.republish(m.queue, m.jobId, m.payload, m.delayMs, listedAt);
      if (outcome !== 'present') requeued++;
    }
    if (requeued) {
      metrics?.recovered.inc({ queue: stage.queue }, requeued);
      deps.log.info(
        { queue: stage.queue, waiting: messages.length, requeued },
        'recovery sweep re-enqueued waiting work',
      );
    }
    return messages.length;
  };

  const processor = async (job: Job): Promise<void> => {
    const parsed = def.schema.safeParse(job.data);
    if (!parsed.success) {
      // A payload that does not match its schema never will: fail now, no retries.
      throw new UnrecoverableError(`invalid ${stage.queue} message: ${formatZodError(parsed.error)}`);
    }
    const message = parsed.data as MessageOf<Q>;
    const log = deps.log.child({ queue: stage.queue, jobId: job.id, correlationId: message.correlationId });
    const ctx: JobContext = {
      queue: stage.queue,
      jobId: job.id ?? '',
      attempt: job.attemptsMade + 1,
      correlationId: message.correlationId,
      log,
    };
    // Before any work: whatever the handler commits, this stage's log already names the request
    // (a kill between a commit and the next line would otherwise leave no trace of it here).
    log.info({ attempt: ctx.attempt }, 'job started');
    const stopTimer = metrics?.jobDuration.startTimer({ queue: stage.queue });
    const uncapturedBefore = uncapturedOutboxWrites();
    // What the handler's transactions commit to the outbox is published by this job right after.
    const capture = new OutboxCapture();
    let handled = false;
    try {
      await capture.run(() => stage.handle(message, ctx, deps));
      handled = true;
    } catch (err) {
      if (err instanceof PermanentError) {
        log.warn({ err: err.message }, 'job failed permanently');
        throw new UnrecoverableError(err.message);
      }
      if (err instanceof RateLimitedError) {
        // Slow the whole queue down and put this job back without spending an attempt.
        metrics?.jobs.inc({ queue: stage.queue, outcome: 'rate_limited' });
        metrics?.rateLimitWaits.inc({ queue: stage.queue });
        metrics?.rateLimitWaitSeconds.inc({ queue: stage.queue }, err.retryAfterMs / 1000);
        log.info({ retryAfterMs: err.retryAfterMs }, 'provider rate limit: pausing queue');
        await worker.rateLimit(err.retryAfterMs);
        throw Worker.RateLimitError();
      }
      log.warn(
        { err: err instanceof Error ? err.message : String(err), attempt: ctx.attempt },
        'job failed; will retry',
      );
      throw err;
    } finally {
      stopTimer?.();
      // A handler that failed after a commit: that commit's messages are due all the same.
      if (!handled) await publishCaptured(capture.committed, log);
    }
    // The work is committed; a kill from here on leaves its messages to the relay timer.
    log.info({ attempt: ctx.attempt }, 'job done');
    await publishCaptured(capture.committed, log);
    // Rows written outside a capturing transaction: publish them now rather than on the timer.
    if (uncapturedOutboxWrites() === uncapturedBefore) return;
    await relay().catch((err: unknown) =>
      log.warn({ err: String(err) }, 'outbox relay failed; timer will retry'),
    );
  };

  const worker = new Worker(stage.queue, processor, {
    connection: opts.workerConnection,
    prefix: opts.config.QUEUE_PREFIX,
    concurrency: opts.config.WORKER_CONCURRENCY,
    // BullMQ checks the queue's rate-limit key (set by `worker.rateLimit` on a 429) only for workers
    // with a limiter; without one a 429 paused this worker alone, and its other slots and every other
    // process kept calling the provider. The bound itself is far above any real rate.
    limiter: { max: 1_000_000, duration: 1_000 },
    ...(opts.config.JOB_LOCK_MS
      ? { lockDuration: opts.config.JOB_LOCK_MS, stalledInterval: opts.config.JOB_LOCK_MS }
      : {}),
    autorun: false,
  });
  worker.on('error', (err) => deps.log.error({ err: err.message, queue: stage.queue }, 'worker error'));
  worker.on('completed', () => metrics?.jobs.inc({ queue: stage.queue, outcome: 'completed' }));
  worker.on('failed', (job, err) => {
    if (!job || err.name === 'RateLimitError') return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics?.jobs.inc({ queue: stage.queue, outcome: final ? 'failed' : 'retried' });
  });

  metrics?.trackQueueDepth(stage.queue, () => publisher.queue(stage.queue).getJobCounts(...QUEUE_STATES));

  const timers: NodeJS.Timeout[] = [];
  if (opts.timers !== false) {
    timers.push(
      setInterval(() => {
        relay(RELAY_MIN_AGE_MS).catch((err: unknown) =>
          deps.log.warn({ err: String(err) }, 'outbox relay failed'),
        );
      }, opts.config.OUTBOX_INTERVAL_MS),
      setInterval(() => {
        recover().catch((err: unknown) => deps.log.warn({ err: String(err) }, 'recovery sweep failed'));
      }, opts.config.RECOVERY_INTERVAL_MS),
    );
    for (const t of timers) t.unref();
    // Start-up sweep: whatever was waiting while we were down (or lost with Redis) is queued again.
    await recover().catch((err: unknown) => deps.log.warn({ err: String(err) }, 'start-up recovery failed'));
  }
  void worker.run();
  await worker.waitUntilReady();

  return {
    worker,
    publisher,
    relayOutbox: () => relay(),
    publishCaptured,
    recover,
    async close(timeoutMs: number) {
      for (const t of timers) clearInterval(t);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([worker.close().then(() => 'drained' as const), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        // Jobs still running are abandoned: their locks lapse and another worker takes them again.
        await worker.close(true);
      }
      await relaying?.catch(() => {});
      await marks.flush();
      await publisher.close();
      return { drained: outcome === 'drained' };
    },
  };
}
