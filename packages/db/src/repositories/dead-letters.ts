import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { DeadLetterRow, DeadLetterSubjectKind } from '../schema.ts';
import { type Camelized, camelized } from './camel.ts';
import { firstRecord } from './records.ts';

/**
 * Dead letters (migration 0015). The recovery sweep re-enqueues a job it finds failed for good while
 * its row still waits; each such recovery is counted here per job. Over the cap the row is
 * dead-lettered: the sweep leaves it, and only an admin retry puts it back. A record is the row,
 * camelCase.
 */
export type DeadLetterRecord = Camelized<DeadLetterRow>;

export interface RecoveryInput {
  queue: string;
  jobId: string;
  subjectKind: DeadLetterSubjectKind;
  subjectId: string;
  /** Known from the message (a request carries it); otherwise read from the subject's row. */
  licenseId?: string | null;
  payload: unknown;
  /** The job's last failure. */
  reason: string | null;
  /** How many recoveries a job gets; the next finding dead-letters it. */
  cap: number;
}

/** The license of the row a job works on, as a subquery (null when the row is gone). */
function licenseOfSubject(kind: DeadLetterSubjectKind, subjectId: string, given?: string | null) {
  if (given) return sql<string | null>`${given}::text`;
  const uuid = /^[0-9a-f-]{36}$/i.test(subjectId) ? subjectId : '00000000-0000-0000-0000-000000000000';
  switch (kind) {
    case 'dataset':
      return sql<string | null>`(SELECT license_id FROM datasets WHERE id = ${uuid}::uuid)`;
    case 'fine_tune':
      return sql<string | null>`(SELECT license_id FROM fine_tunes WHERE id = ${uuid}::uuid)`;
    case 'notification':
      return sql<string | null>`(SELECT coalesce(f.license_id, p.license_id) FROM notifications n
        LEFT JOIN fine_tunes f ON f.id = n.fine_tune_id LEFT JOIN training_profiles p ON p.id = n.profile_id
        WHERE n.id = ${uuid}::uuid)`;
    default:
      return sql<string | null>`NULL::text`;
  }
}

/**
 * For the sweep, which found `jobId` failed for good while its row still waits: counts one more
 * recovery, or, when the job already had `cap` of them, dead-letters it (the reason is the job's last
 * failure). One statement, so sweeps of several processes count each finding once. The caller
 * re-enqueues only when the returned status is `retrying`.
 */
export async function recordRecovery(db: Executor, input: RecoveryInput): Promise<DeadLetterRecord> {
  const cap = Math.max(0, Math.floor(input.cap));
  const license = licenseOfSubject(input.subjectKind, input.subjectId, input.licenseId);
  const { rows } = await sql<DeadLetterRow>`
    INSERT INTO dead_letters AS d
      (queue, job_id, subject_kind, subject_id, license_id, payload, status, recoveries, reason, dead_lettered_at)
    VALUES (${input.queue}, ${input.jobId}, ${input.subjectKind}, ${input.subjectId}, ${license},
      ${JSON.stringify(input.payload)}::jsonb,
      CASE WHEN ${cap}::int = 0 THEN 'dead_lettered' ELSE 'retrying' END,
      CASE WHEN ${cap}::int = 0 THEN 0 ELSE 1 END,
      ${input.reason},
      CASE WHEN ${cap}::int = 0 THEN now() END)
    ON CONFLICT (queue, job_id) DO UPDATE SET
      status = CASE WHEN d.status = 'dead_lettered' OR d.recoveries >= ${cap}::int
        THEN 'dead_lettered' ELSE 'retrying' END,
      recoveries = CASE WHEN d.status = 'dead_lettered' OR d.recoveries >= ${cap}::int
        THEN d.recoveries ELSE d.recoveries + 1 END,
      dead_lettered_at = CASE WHEN d.status = 'dead_lettered' OR d.recoveries >= ${cap}::int
        THEN coalesce(d.dead_lettered_at, now()) END,
      reason = coalesce(EXCLUDED.reason, d.reason),
      payload = EXCLUDED.payload,
      license_id = coalesce(d.license_id, EXCLUDED.license_id),
      updated_at = now()
    RETURNING *`.execute(db);
  const row = rows[0];
  if (!row) throw new Error(`dead_letters row ${input.queue}/${input.jobId} not written`);
  return camelized(row);
}

/** Which of `jobIds` (of `queue`) are dead-lettered: the sweep leaves those alone. */
export async function findDeadLetteredJobIds(
  db: Executor,
  queue: string,
  jobIds: readonly string[],
): Promise<Set<string>> {
  if (jobIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('dead_letters')
    .select('job_id')
    .where('queue', '=', queue)
    .where('status', '=', 'dead_lettered')
    .where('job_id', 'in', [...jobIds])
    .execute();
  return new Set(rows.map((r) => r.job_id));
}

export interface DeadLetterFilter {
  licenseId?: string;
  queue?: string;
  limit?: number;
}

/** Dead-lettered rows, the most recent first (the API's and the hub's list). */
export async function listDeadLetters(
  db: Executor,
  filter: DeadLetterFilter = {},
): Promise<DeadLetterRecord[]> {
  let q = db
    .selectFrom('dead_letters')
    .selectAll()
    .where('status', '=', 'dead_lettered')
    .orderBy('dead_lettered_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit ?? 100);
  if (filter.licenseId !== undefined) q = q.where('license_id', '=', filter.licenseId);
  if (filter.queue !== undefined) q = q.where('queue', '=', filter.queue);
  return (await q.execute()).map(camelized);
}

/** The dead letters open on these rows (datasets, fine-tunes…), keyed by subject id. */
export async function findOpenDeadLettersBySubject(
  db: Executor,
  subjectIds: readonly string[],
): Promise<Map<string, DeadLetterRecord>> {
  const found = new Map<string, DeadLetterRecord>();
  if (subjectIds.length === 0) return found;
  const rows = await db
    .selectFrom('dead_letters')
    .selectAll()
    .where('status', '=', 'dead_lettered')
    .where('subject_id', 'in', [...subjectIds])
    .orderBy('dead_lettered_at')
    .execute();
  for (const row of rows) found.set(row.subject_id, camelized(row));
  return found;
}

export async function findDeadLetter(db: Executor, id: string): Promise<DeadLetterRecord | undefined> {
  return firstRecord(db.selectFrom('dead_letters').selectAll().where('id', '=', id), camelized);
}

/**
 * An admin retry: the row leaves the dead-letter state with its recoveries reset, so the sweep counts
 * afresh. Undefined when it was not dead-lettered (retried already, or no such row).
 */
export async function reopenDeadLetter(db: Executor, id: string): Promise<DeadLetterRecord | undefined> {
  return firstRecord(
    db
      .updateTable('dead_letters')
      .set({
        status: 'retrying',
        recoveries: 0,
        admin_retries: sql`admin_retries + 1`,
        retried_at: sql`now()`,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .where('status', '=', 'dead_lettered')
      .returningAll(),
    camelized,
  );
}

/** Dead-lettered rows per queue (the `tuneline_dead_letters` gauge). */
export async function countDeadLetters(
  db: Executor,
  queues: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(queues.map((q) => [q, 0]));
  if (queues.length === 0) return counts;
  const rows = await db
    .selectFrom('dead_letters')
    .select(['queue', sql<string>`count(*)`.as('n')])
    .where('status', '=', 'dead_lettered')
    .where('queue', 'in', [...queues])
    .groupBy('queue')
    .execute();
  for (const r of rows) counts[r.queue] = Number(r.n);
  return counts;
}
