import type { QueueName } from '@tuneline/contracts';
import { findDeadLetteredJobIds, type OutboxMessage, recordRecovery } from '@tuneline/db';
import { messageSubject } from './dead-letters.ts';
import type { Metrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';
import type { Stage, StageDeps } from './stage.ts';

/** What the sweep did with the rows waiting on its stage. */
export interface SweepResult {
  /** Rows waiting on the stage (dead-lettered ones included). */
  waiting: number;
  requeued: number;
  /** Rows dead-lettered by this sweep. */
  deadLettered: number;
  /** Rows left alone because they were dead-lettered before. */
  skipped: number;
}

/**
 * Re-enqueues, from Postgres, the rows waiting on one stage: what a Redis that lost its data (or a
 * job whose attempts ran out during an outage) would otherwise leave waiting forever. A job found
 * failed for good is retried at most `maxRetries` times (counted in Postgres per job, across
 * processes); the next time its row is dead-lettered and the sweep leaves it until an admin retry.
 */
export class RecoverySweeper<Q extends QueueName, D extends StageDeps> {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stage: Stage<Q, D>,
    private readonly deps: D,
    private readonly publisher: Publisher,
    private readonly metrics?: Metrics,
    /** RECOVERY_MAX_RETRIES; undefined: no cap. */
    private readonly maxRetries?: number,
  ) {}

  /** Runs the sweep now; returns how many rows wait on the stage. */
  async sweep(): Promise<number> {
    return (await this.sweepDetailed()).waiting;
  }

  async sweepDetailed(): Promise<SweepResult> {
    const result: SweepResult = { waiting: 0, requeued: 0, deadLettered: 0, skipped: 0 };
    if (!this.stage.recover) return result;
    const listedAt = Date.now();
    const messages = await this.stage.recover(this.deps);
    result.waiting = messages.length;
    const dead = await this.deadLettered(messages);
    for (const m of messages) {
      if (dead.has(`${m.queue}\n${m.jobId}`)) {
        result.skipped++;
        continue;
      }
      const outcome = await this.publisher.republish(
        m.queue,
        m.jobId,
        m.payload,
        m.delayMs,
        listedAt,
        this.maxRetries === undefined ? undefined : (reason) => this.mayRetry(m, reason),
      );
      if (outcome === 'held') result.deadLettered++;
      else if (outcome !== 'present') result.requeued++;
    }
    const queue = this.stage.queue;
    if (result.requeued) {
      this.metrics?.recovered.inc({ queue }, result.requeued);
      this.deps.log.info(
        { queue, waiting: messages.length, requeued: result.requeued },
        'recovery sweep re-enqueued waiting work',
      );
    }
    return result;
  }

  /** The dead-lettered ones among the messages, as `queue\njobId` keys. */
  private async deadLettered(messages: readonly OutboxMessage[]): Promise<Set<string>> {
    const keys = new Set<string>();
    if (this.maxRetries === undefined) return keys;
    const byQueue = new Map<string, string[]>();
    for (const m of messages) byQueue.set(m.queue, [...(byQueue.get(m.queue) ?? []), m.jobId]);
    for (const [queue, jobIds] of byQueue) {
      for (const id of await findDeadLetteredJobIds(this.deps.db, queue, jobIds)) keys.add(`${queue}\n${id}`);
    }
    return keys;
  }

  /** Counts a recovery of a failed job; false (and a dead letter) once it has had its share. */
  private async mayRetry(m: OutboxMessage, reason: string | null): Promise<boolean> {
    const subject = messageSubject(m.queue, m.payload);
    const record = await recordRecovery(this.deps.db, {
      queue: m.queue,
      jobId: m.jobId,
      subjectKind: subject.kind,
      subjectId: subject.id,
      licenseId: subject.licenseId ?? null,
      payload: m.payload,
      reason,
      cap: this.maxRetries ?? 0,
    });
    if (record.status !== 'dead_lettered') return true;
    this.metrics?.deadLettered.inc({ queue: m.queue });
    this.deps.log.warn(
      {
        queue: m.queue,
        jobId: m.jobId,
        subject: `${subject.kind} ${subject.id}`,
        recoveries: record.recoveries,
        reason,
        deadLetterId: record.id,
      },
      'dead-lettered: the job kept failing after the recovery cap; an admin retry puts it back',
    );
    return false;
  }

  /** Sweeps every `intervalMs`. */
  startTimer(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.log.warn({ err: String(err) }, 'recovery sweep failed'));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
