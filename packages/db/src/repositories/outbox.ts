import { AsyncLocalStorage } from 'node:async_hooks';
import type { OutboxMessage, QueueName } from '@tuneline/contracts';
import { sql, type Transaction } from 'kysely';
import type { Executor } from '../connection.ts';
import type { Database, OutboxRow } from '../schema.ts';

/** Built by the message builders of @tuneline/contracts; re-exported for the stages' convenience. */
export type { OutboxMessage } from '@tuneline/contracts';

/** What publishing an outbox row needs. */
export type OutboxDispatch = Pick<OutboxRow, 'id' | 'queue' | 'job_id' | 'payload' | 'available_at'>;

/**
 * Collects the outbox rows that transactions run through `inTransaction` inside `run` have committed,
 * so the caller (a job, a webhook delivery) can publish them at once instead of waiting for the relay.
 */
export class OutboxCapture {
  readonly committed: OutboxDispatch[] = [];

  run<T>(work: () => Promise<T>): Promise<T> {
    return scope.run({ capture: this, pending: undefined }, work);
  }
}

interface OutboxScope {
  capture: OutboxCapture | undefined;
  /** Rows written by the innermost `inTransaction`; handed to the capture only once it commits. */
  pending: OutboxDispatch[] | undefined;
}

const scope = new AsyncLocalStorage<OutboxScope>();
let uncapturedWrites = 0;

/**
 * How many outbox rows this process has written outside a capturing `inTransaction`. The worker runtime
 * compares it before and after a job to run the relay when the job wrote rows it cannot publish itself.
 */
export function uncapturedOutboxWrites(): number {
  return uncapturedWrites;
}

/**
 * Runs `fn` in a transaction (or in the caller's, when `db` already is one). The outbox rows it writes
 * reach the surrounding `OutboxCapture` only after COMMIT succeeded: a rolled-back row is never
 * published. A commit whose reply is lost leaves its rows to the relay, which is the fallback anyway.
 */
export async function inTransaction<T>(
  db: Executor,
  fn: (tx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  if (db.isTransaction) return fn(db as Transaction<Database>);
  const capture = scope.getStore()?.capture;
  if (!capture) return db.transaction().execute(fn);
  const pending: OutboxDispatch[] = [];
  const result = await scope.run({ capture, pending }, () => db.transaction().execute(fn));
  capture.committed.push(...pending);
  return result;
}

/**
 * Writes the next stage's message in the caller's transaction, so the state change and the message
 * commit together. Inside a capturing `inTransaction` the caller publishes it once committed;
 * otherwise the relay does.
 */
export async function writeOutbox<Q extends QueueName>(
  tx: Executor,
  message: OutboxMessage<Q>,
): Promise<void> {
  const availableAt = new Date(Date.now() + (message.delayMs ?? 0));
  const row = await tx
    .insertInto('outbox')
    .values({
      queue: message.queue,
      job_id: message.jobId,
      payload: JSON.stringify(message.payload),
      available_at: availableAt,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const pending = scope.getStore()?.pending;
  if (pending) {
    pending.push({
      id: row.id,
      queue: message.queue,
      job_id: message.jobId,
      payload: message.payload,
      available_at: availableAt,
    });
  } else {
    uncapturedWrites++;
  }
}

/** Marks rows published after their messages reached Redis (rows already marked are left alone). */
export async function markOutboxPublished(db: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`UPDATE outbox SET published_at = now() WHERE id = ANY(${ids}::bigint[]) AND published_at IS NULL`.execute(
    db,
  );
}

export interface RelayOptions {
  limit?: number;
  /**
   * Only rows at least this old. The relay timer leaves fresh rows to the job that wrote them, which
   * publishes them itself right after its commit; a crashed job's rows are picked up once this old.
   */
  minAgeMs?: number;
}

/**
 * Locks up to `limit` unpublished rows (skipping rows another relay holds), lets `publish` push them,
 * and marks them published in the same transaction. If publishing throws, nothing is marked and the
 * rows are tried again; the deterministic job ids make a repeated publish collapse in BullMQ.
 */
export async function relayOutbox(
  db: Executor,
  publish: (rows: OutboxRow[]) => Promise<void>,
  opts: RelayOptions = {},
): Promise<number> {
  // Most timer runs find nothing: one indexed look outside a transaction instead of three statements.
  if (opts.minAgeMs && !(await hasDueOutboxRows(db, opts.minAgeMs))) return 0;
  return db.transaction().execute(async (tx) => {
    let query = tx
      .selectFrom('outbox')
      .selectAll()
      .where('published_at', 'is', null)
      .orderBy('id')
      .limit(opts.limit ?? 200)
      .forUpdate()
      .skipLocked();
    if (opts.minAgeMs) query = query.where(olderThan(opts.minAgeMs));
    const rows = await query.execute();
    if (rows.length === 0) return 0;
    await publish(rows);
    await markOutboxPublished(
      tx,
      rows.map((r) => r.id),
    );
    return rows.length;
  });
}

/** Rows written at least `ms` ago, on the database's clock (like created_at itself). */
const olderThan = (ms: number) => sql<boolean>`created_at < now() - ${ms} * interval '1 millisecond'`;

async function hasDueOutboxRows(db: Executor, minAgeMs: number): Promise<boolean> {
  const { rows } = await sql<{ due: boolean }>`
    SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND ${olderThan(minAgeMs)}) AS due`.execute(
    db,
  );
  return rows[0]?.due === true;
}

/** Published rows older than the retention are only history: drop them in batches. */
export async function pruneOutbox(db: Executor, olderThanMs: number): Promise<number> {
  const result = await db
    .deleteFrom('outbox')
    .where('published_at', '<', new Date(Date.now() - olderThanMs))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
