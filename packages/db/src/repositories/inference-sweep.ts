import { sql } from 'kysely';
import type { Executor } from '../connection.ts';

/**
 * The gateway's sweep (migrations 0055, 0056): holds nobody settled within a bound are released, and
 * Idempotency-Keys older than their retention are forgotten. Both are safe to run from several API
 * processes at once: a hold resolves once, a key is deleted once.
 */

export interface ExpiredHolds {
  /** Call ids of unresolved holds older than the cutoff, oldest first. */
  calls: string[];
  /** The last transfer (seq) looked at, all of whose predecessors are older than the cutoff. */
  through: string | null;
  /** Whether more transfers older than the cutoff may follow (the batch was full). */
  more: boolean;
}

/**
 * The next `limit` ledger transfers after the sweep's mark (`inference_hold_sweep`), read in seq order
 * and only as long as they are older than `cutoff`, and among them the holds still unresolved. Seq
 * order is insertion order, so the mark never passes a transfer not yet old enough; a hold is one
 * statement, so none is still uncommitted once older than the bound.
 */
export async function findExpiredHolds(
  db: Executor,
  opts: { cutoff: Date; limit: number },
): Promise<ExpiredHolds> {
  const { rows } = await sql<{
    through: string | null;
    scanned: string;
    all_old: boolean | null;
    calls: string[];
  }>`
    WITH next AS (
      SELECT t.seq, t.id, t.kind, t.created_at < ${opts.cutoff} AS old
      FROM ledger_transfers t
      WHERE t.seq > (SELECT swept_seq FROM inference_hold_sweep WHERE id = 1)
      ORDER BY t.seq
      LIMIT ${opts.limit}
    ), prefix AS (
      SELECT seq, id, kind, bool_and(old) OVER (ORDER BY seq) AS eligible FROM next
    )
    SELECT
      (SELECT max(seq) FROM prefix WHERE eligible)::text AS through,
      (SELECT count(*) FROM next)::text AS scanned,
      (SELECT bool_and(eligible) FROM prefix) AS all_old,
      coalesce((
        SELECT array_agg(substr(p.id, 6) ORDER BY p.seq) FROM prefix p
        WHERE p.eligible AND p.kind = 'hold'
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
      ), '{}') AS calls`.execute(db);
  const row = rows[0];
  if (!row) return { calls: [], through: null, more: false };
  return {
    calls: row.calls,
    through: row.through,
    more: Number(row.scanned) === opts.limit && row.all_old === true,
  };
}

/**
 * Releases a call's hold as expired (`release-<callId>`, recorded in `inference_expired_holds`), in one
 * statement. `released` only for the one call that did it; a hold settled or released meanwhile is
 * left as it is (`settled`, `already`).
 */
export async function expireHold(
  db: Executor,
  callId: string,
  afterSeconds: number,
): Promise<'released' | 'already' | 'settled' | 'no_hold'> {
  const { rows } = await sql<{ outcome: 'released' | 'already' | 'settled' | 'no_hold' }>`
    SELECT o_outcome AS outcome FROM inference_expire_hold(${callId}::uuid, ${afterSeconds}::integer)`.execute(
    db,
  );
  return rows[0]?.outcome ?? 'no_hold';
}

/** Moves the sweep's mark forward (never back: two sweeps may finish in any order). */
export async function advanceHoldSweep(db: Executor, through: string): Promise<void> {
  await sql`
    UPDATE inference_hold_sweep SET swept_seq = greatest(swept_seq, ${through}::bigint), swept_at = now()
    WHERE id = 1`.execute(db);
}

/**
 * Forgets up to `limit` Idempotency-Keys claimed before `cutoff`, oldest first, except a key whose call
 * still holds credits (in flight: forgetting it would let a retry run the call twice). Returns how
 * many were deleted.
 */
export async function forgetIdempotencyKeys(
  db: Executor,
  opts: { cutoff: Date; limit: number },
): Promise<number> {
  const result = await sql`
    DELETE FROM inference_idempotency i
    WHERE (i.license_id, i.key) IN (
      SELECT k.license_id, k.key FROM inference_idempotency k
      WHERE k.created_at < ${opts.cutoff}
        AND (k.response IS NOT NULL OR NOT EXISTS (
          SELECT 1 FROM ledger_transfers h
          WHERE h.id = 'hold-' || k.call_id
            AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = h.id)))
      ORDER BY k.created_at
      LIMIT ${opts.limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/** The holds the sweep released, newest first (ops and tests). */
export async function listExpiredHolds(db: Executor, licenseId: string) {
  return db
    .selectFrom('inference_expired_holds')
    .selectAll()
    .where('license_id', '=', licenseId)
    .orderBy('expired_at', 'desc')
    .execute();
}
