import { type MessageInput, type QueueName, queues } from '@tuneline/contracts';
import type { OutboxDispatch } from '@tuneline/db';
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Every message of the catalogue carries a schema version; a job hash without one lost its data. */
function hasPayload(data: unknown): boolean {
  return typeof data === 'object' && data !== null && 'schemaVersion' in data;
}

/**
 * Adds jobs to any queue of the catalogue with that queue's default job options. One Queue object
 * per queue name, created on first use and shared by the outbox relay and the recovery sweep.
 */
export class Publisher {
  private readonly open = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
  ) {}

  queue(name: QueueName): Queue {
    let q = this.open.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: queues[name].jobOptions,
      });
      // Errors surface on the add() promise; keep the emitter from crashing the process.
      q.on('error', () => {});
      this.open.set(name, q);
    }
    return q;
  }

  async publish<Q extends QueueName>(
    name: Q,
    jobId: string,
    payload: MessageInput<Q>,
    delayMs = 0,
  ): Promise<void> {
    await this.queue(name).add(name, payload, { jobId, delay: Math.max(0, delayMs) });
  }

  /**
   * For the recovery sweep, which read at `listedAt` (ms) that the row still waits on its stage, so
   * whatever job holds this id in Redis did not move it on. A failed job (attempts exhausted, e.g.
   * during an outage) is retried and a completed one is replaced; one still waiting, delayed or active
   * is left alone, and so is one that completed after `listedAt`: it may have moved the row on since.
   * A stray hash with no payload or in no state (see below) is replaced whatever its state says.
   */
  async republish<Q extends QueueName>(
    name: Q,
    jobId: string,
    payload: MessageInput<Q>,
    delayMs = 0,
    listedAt = Date.now(),
    /**
     * Asked before a failed job is retried, with its last failure: false leaves it failed ('held'),
     * which is how the sweep's cap dead-letters a row.
     */
    mayRetry?: (failedReason: string | null) => Promise<boolean>,
  ): Promise<'added' | 'retried' | 'replaced' | 'present' | 'held'> {
    const queue = this.queue(name);
    const existing = await queue.getJob(jobId);
    if (!existing) {
      await this.publish(name, jobId, payload, delayMs);
      return 'added';
    }
    const state = await existing.getState();
    // A Redis flush that races in-flight jobs can leave a stray job hash behind (a worker's script
    // writing to a job that no longer exists): no payload, or in no list at all. Left there, it would
    // swallow every re-add under its id and its row would wait forever.
    const stray = state === 'unknown' || !hasPayload(existing.data);
    if (stray && state !== 'active') return this.replace(existing, name, jobId, payload, delayMs);
    if (state === 'failed') {
      if (mayRetry && !(await mayRetry(existing.failedReason || null))) return 'held';
      await existing.retry('failed');
      return 'retried';
    }
    if (state === 'completed' && (existing.finishedOn ?? 0) < listedAt) {
      return this.replace(existing, name, jobId, payload, delayMs);
    }
    return 'present';
  }

  /**
   * An admin retry of a dead-lettered job: a failed job is retried with its attempts reset (the full
   * backoff again), a missing or completed one is added anew; one that is waiting or running is left.
   */
  async retryFresh<Q extends QueueName>(
    name: Q,
    jobId: string,
    payload: MessageInput<Q>,
  ): Promise<'added' | 'retried' | 'replaced' | 'present'> {
    const existing = await this.queue(name).getJob(jobId);
    if (!existing) {
      await this.publish(name, jobId, payload);
      return 'added';
    }
    const state = await existing.getState();
    if (state === 'failed' && hasPayload(existing.data)) {
      await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'retried';
    }
    if (state === 'failed' || state === 'completed' || state === 'unknown') {
      return this.replace(existing, name, jobId, payload);
    }
    return 'present';
  }

  /**
   * Removes `existing` and adds the message under its id. A worker may have taken the job between the
   * caller's state check and the removal: BullMQ then refuses to remove a locked job, and the job is
   * left to that worker ('present'; the next sweep looks again) instead of failing the whole sweep.
   */
  async replace<Q extends QueueName>(
    existing: Job,
    name: Q,
    jobId: string,
    payload: MessageInput<Q>,
    delayMs = 0,
  ): Promise<'replaced' | 'present'> {
    try {
      await existing.remove();
    } catch (err) {
      if (err instanceof Error && /locked by another worker/.test(err.message)) return 'present';
      throw err;
    }
    await this.publish(name, jobId, payload, delayMs);
    return 'replaced';
  }

  /** Publishes outbox rows, grouped per queue with addBulk (one round trip per queue). */
  async publishOutboxRows(rows: readonly OutboxDispatch[]): Promise<void> {
    const byQueue = new Map<string, OutboxDispatch[]>();
    for (const row of rows) byQueue.set(row.queue, [...(byQueue.get(row.queue) ?? []), row]);
    const now = Date.now();
    for (const [name, group] of byQueue) {
      if (!Object.hasOwn(queues, name)) throw new Error(`outbox row for unknown queue "${name}"`);
      await this.queue(name as QueueName).addBulk(
        group.map((row) => ({
          name,
          data: row.payload,
          opts: { jobId: row.job_id, delay: Math.max(0, new Date(row.available_at).getTime() - now) },
        })),
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.open.values()].map((q) => q.close()));
    this.open.clear();
  }
}
