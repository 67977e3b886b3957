import { formatZodError, type MessageOf, type QueueName, queues } from '@tuneline/contracts';
import { OutboxCapture, uncapturedOutboxWrites } from '@tuneline/db';
import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import { PermanentError, RateLimitedError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import type { OutboxPublisher } from './outbox-publisher.ts';
import type { JobContext, Stage, StageDeps } from './stage.ts';

export interface StageProcessorOptions<D extends StageDeps> {
  deps: D;
  /** Publishes what the handler's transactions committed to the outbox, right after the job. */
  outbox: OutboxPublisher;
  /** The stage's own queue: a provider 429 pauses it, for every worker of every process. */
  queue: Queue;
  metrics?: Metrics;
}

/**
 * The BullMQ processor of one stage: parses the payload with the catalogue's schema, runs the handler
 * with a logger that names the job and its request, publishes what the handler committed, and
 * classifies errors: PermanentError fails at once, RateLimitedError pauses the queue and puts the job
 * back without spending an attempt, anything else is retried with backoff. Nothing is swallowed.
 */
export function stageProcessor<Q extends QueueName, D extends StageDeps>(
  stage: Stage<Q, D>,
  opts: StageProcessorOptions<D>,
): (job: Job) => Promise<void> {
  const { deps, outbox, metrics } = opts;
  const schema = queues[stage.queue].schema;
  return async (job) => {
    const parsed = schema.safeParse(job.data);
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
        // Slow the whole queue down and put this job back without spending an attempt. The pause is
        // a key in Redis that every worker of the queue reads (they carry a limiter, see startStage).
        metrics?.jobs.inc({ queue: stage.queue, outcome: 'rate_limited' });
        metrics?.rateLimitWaits.inc({ queue: stage.queue });
        metrics?.rateLimitWaitSeconds.inc({ queue: stage.queue }, err.retryAfterMs / 1000);
        log.info({ retryAfterMs: err.retryAfterMs }, 'provider rate limit: pausing queue');
        await opts.queue.rateLimit(err.retryAfterMs);
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
      if (!handled) await outbox.publishCaptured(capture.committed, log);
    }
    // The work is committed; a kill from here on leaves its messages to the relay timer.
    log.info({ attempt: ctx.attempt }, 'job done');
    await outbox.publishCaptured(capture.committed, log);
    // Rows written outside a capturing transaction: publish them now rather than on the timer.
    if (uncapturedOutboxWrites() === uncapturedBefore) return;
    await outbox
      .relay()
      .catch((err: unknown) => log.warn({ err: String(err) }, 'outbox relay failed; timer will retry'));
  };
}
