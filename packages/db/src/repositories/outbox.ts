import type { MessageInput, QueueName } from '@tuneline/contracts';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { OutboxRow } from '../schema.ts';

export interface OutboxMessage<Q extends QueueName = QueueName> {
  queue: Q;
  jobId: string;
  payload: MessageInput<Q>;
  /** Publish with this delay (e.g. the next poll). */
  delayMs?: number;
}

let outboxWrites = 0;

/**
 * How many outbox rows this process has written so far. The worker runtime compares it before and after
 * a job to skip the post-job relay when the job wrote nothing (a rolled-back write only costs one relay).
 */
export function outboxWriteCount(): number {
  return outboxWrites;
}

/**
 * Writes the next stage's message in the caller's transaction, so the state change and the message
 * commit together. The relay in the worker runtime publishes it to Redis afterwards.
 */
export async function writeOutbox<Q extends QueueName>(
  tx: Executor,
  message: OutboxMessage<Q>,
): Promise<void> {
  await tx
    .insertInto('outbox')
    .values({
      queue: message.queue,
      job_id: message.jobId,
      payload: JSON.stringify(message.payload),
      available_at: new Date(Date.now() + (message.delayMs ?? 0)),
    })
    .execute();
  outboxWrites++;
}

/**
 * Locks up to `limit` unpublished rows (skipping rows another relay holds), lets `publish` push them,
 * and marks them published in the same transaction. If publishing throws, nothing is marked and the
 * rows are tried again; the deterministic job ids make a repeated publish collapse in BullMQ.
 */
export async function relayOutbox(
  db: Executor,
  publish: (rows: OutboxRow[]) => Promise<void>,
  limit = 200,
): Promise<number> {
  return db.transaction().execute(async (tx) => {
    const rows = await tx
      .selectFrom('outbox')
      .selectAll()
      .where('published_at', 'is', null)
      .orderBy('id')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (rows.length === 0) return 0;
    await publish(rows);
    await tx
      .updateTable('outbox')
      .set({ published_at: sql`now()` })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
    return rows.length;
  });
}

/** Published rows older than the retention are only history: drop them in batches. */
export async function pruneOutbox(db: Executor, olderThanMs: number): Promise<number> {
  const result = await db
    .deleteFrom('outbox')
    .where('published_at', '<', new Date(Date.now() - olderThanMs))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
