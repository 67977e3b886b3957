import type { Executor, LedgerTransfer } from '@tuneline/db';
import { sql } from 'kysely';
import {
  ensureLicenseAccount,
  grantsAccountId,
  licenseAccountId,
  revenueAccountId,
  transferIds,
} from './accounts.ts';
import { LedgerConflictError, LedgerNotFoundError } from './errors.ts';

/**
 * The four ledger operations. Each one first looks for its own deterministic transfer id: found with
 * the same content it is a replay (success, no effect), found with other content a LedgerConflictError.
 * Account counters and the transfer row change in ONE statement, so they can never disagree.
 *
 * Lock order: every statement updates the license account before the system stripe (the stripe's
 * UPDATE waits on `EXISTS (SELECT 1 FROM <license update>)`); without that, Postgres may run the
 * CTEs in either order and a reserve and a post meeting on one stripe can deadlock.
 */

export interface GrantInput {
  grantId: string;
  licenseId: string;
  amount: bigint;
  memo?: string;
}

export interface ReserveInput {
  fineTuneId: string;
  licenseId: string;
  amount: bigint;
  model: string;
}

export type ReserveResult =
  | { ok: true }
  | {
      ok: false;
      available: bigint;
      required: bigint;
      reason: 'insufficient_credits' | 'overage_blocked';
    };

export interface PostInput {
  fineTuneId: string;
  /** The charge, always what the provider reports (may exceed the reservation: overage). */
  amount: bigint;
  tokens: bigint;
  model: string;
}

export interface PostResult {
  charged: bigint;
  released: bigint;
  overage: bigint;
}

function checkAmount(amount: bigint): string {
  if (typeof amount !== 'bigint' || amount < 0n) {
    throw new RangeError(`ledger amounts are non-negative bigint credits (got ${String(amount)})`);
  }
  return amount.toString();
}

async function findTransfer(tx: Executor, id: string): Promise<LedgerTransfer | undefined> {
  return tx.selectFrom('ledger_transfers').selectAll().where('id', '=', id).executeTakeFirst();
}

function conflict(id: string, what: string): LedgerConflictError {
  return new LedgerConflictError(`transfer ${id} already exists with other content (${what})`);
}

/** Top-up: the grants account pays the license. Clears overage_blocked once the balance is back >= 0. */
export async function grantCredits(tx: Executor, input: GrantInput): Promise<void> {
  const amount = checkAmount(input.amount);
  if (!input.grantId || /\s/.test(input.grantId)) throw new RangeError('grantId must be a non-empty token');
  const id = transferIds.grant(input.grantId);
  const memo = input.memo ?? null;
  const existing = await findTransfer(tx, id);
  if (existing) {
    if (existing.license_id !== input.licenseId || BigInt(existing.amount) !== input.amount) {
      throw conflict(id, `license ${existing.license_id}, amount ${existing.amount}`);
    }
    if (existing.memo !== memo) throw conflict(id, `memo ${JSON.stringify(existing.memo)}`);
    return;
  }
  await ensureLicenseAccount(tx, input.licenseId);
  const account = licenseAccountId(input.licenseId);
  const grants = grantsAccountId(input.grantId);
  await sql`
    WITH transfer AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id, memo)
      VALUES (${id}, 'grant', ${grants}, ${account}, ${amount}::bigint, ${input.licenseId}, ${memo})
      RETURNING amount
    ), credited AS (
      UPDATE ledger_accounts
      SET credits_posted = credits_posted + t.amount,
          overage_blocked = overage_blocked AND credits_posted + t.amount - debits_posted - debits_pending < 0
      FROM transfer t WHERE id = ${account}
      RETURNING 1
    )
    UPDATE ledger_accounts SET debits_posted = debits_posted + t.amount
    FROM transfer t WHERE id = ${grants} AND EXISTS (SELECT 1 FROM credited)
  `.execute(tx);
}

/**
 * Holds credits for a fine-tune: a pending transfer license → revenue. The balance check and the
 * debit are one conditional UPDATE, so concurrent reservations can never overspend.
 */
export async function reserveCredits(tx: Executor, input: ReserveInput): Promise<ReserveResult> {
  const amount = checkAmount(input.amount);
  const id = transferIds.reserve(input.fineTuneId);
  const account = licenseAccountId(input.licenseId);
  const revenue = revenueAccountId(input.fineTuneId);
  // First try: the replay check rides in the statement (NOT EXISTS), so a new reservation is one round trip.
  const result = await sql<{ inserted: string }>`
    WITH debited AS (
      UPDATE ledger_accounts SET debits_pending = debits_pending + ${amount}::bigint
      WHERE id = ${account} AND NOT overage_blocked
        AND credits_posted - debits_posted - debits_pending >= ${amount}::bigint
        AND NOT EXISTS (SELECT 1 FROM ledger_transfers WHERE id = ${id})
      RETURNING id
    ), credited AS (
      UPDATE ledger_accounts SET credits_pending = credits_pending + ${amount}::bigint
      WHERE id = ${revenue} AND EXISTS (SELECT 1 FROM debited)
      RETURNING id
    ), transfer AS (
      INSERT INTO ledger_transfers
        (id, kind, debit_account_id, credit_account_id, amount, license_id, fine_tune_id, model)
      SELECT ${id}, 'reserve', ${account}, ${revenue}, ${amount}::bigint, ${input.licenseId},
        ${input.fineTuneId}::uuid, ${input.model}
      FROM debited
      RETURNING id
    )
    SELECT (SELECT count(*) FROM transfer) + (SELECT count(*) FROM credited) AS inserted
  `.execute(tx);
  const inserted = Number(result.rows[0]?.inserted ?? 0);
  if (inserted === 2) return { ok: true };
  if (inserted !== 0) throw new Error(`reserve ${id}: system account ${revenue} is missing`);
  const existing = await findTransfer(tx, id);
  if (existing) {
    if (
      existing.license_id !== input.licenseId ||
      BigInt(existing.amount) !== input.amount ||
      existing.model !== input.model
    ) {
      throw conflict(
        id,
        `license ${existing.license_id}, amount ${existing.amount}, model ${existing.model}`,
      );
    }
    return { ok: true };
  }
  const balance = await tx
    .selectFrom('ledger_accounts')
    .select(['credits_posted', 'debits_posted', 'debits_pending', 'overage_blocked'])
    .where('id', '=', account)
    .executeTakeFirst();
  if (!balance && input.amount === 0n) {
    // A license with no account yet can still hold a zero reservation: open the account and retry.
    await ensureLicenseAccount(tx, input.licenseId);
    return reserveCredits(tx, input);
  }
  const available = balance
    ? BigInt(balance.credits_posted) - BigInt(balance.debits_posted) - BigInt(balance.debits_pending)
    : 0n;
  return {
    ok: false,
    available,
    required: input.amount,
    reason: balance?.overage_blocked ? 'overage_blocked' : 'insufficient_credits',
  };
}

interface LockedReservation {
  reservation: LedgerTransfer;
  resolution: Pick<LedgerTransfer, 'id' | 'amount' | 'tokens' | 'model'> | undefined;
  overageAmount: bigint;
}

/**
 * Locks the reservation row (FOR UPDATE: post and void of one reservation queue here), then reads how
 * it was resolved in a second statement, whose fresh snapshot sees a resolver that committed while we
 * waited for the lock (one statement would not: its snapshot predates the wait).
 */
async function lockReservation(tx: Executor, fineTuneId: string): Promise<LockedReservation> {
  const reserveId = transferIds.reserve(fineTuneId);
  const reservation = await tx
    .selectFrom('ledger_transfers')
    .selectAll()
    .where('id', '=', reserveId)
    .forUpdate()
    .executeTakeFirst();
  if (!reservation) throw new LedgerNotFoundError(`no reservation ${reserveId}`);
  const rows = await tx
    .selectFrom('ledger_transfers')
    .select(['id', 'kind', 'amount', 'tokens', 'model', 'pending_id'])
    .where((eb) => eb.or([eb('pending_id', '=', reserveId), eb('id', '=', transferIds.overage(fineTuneId))]))
    .execute();
  return {
    reservation,
    resolution: rows.find((r) => r.pending_id === reserveId),
    overageAmount: BigInt(rows.find((r) => r.kind === 'overage')?.amount ?? 0),
  };
}

/**
 * A unique violation on a transfer id or on the one-resolution index: someone else got there first
 * (a safety net; the reservation lock normally lets the loser see the winner before writing).
 */
async function asConflict<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    if (e?.code === '23505' && /^ledger_transfers_(pkey|one_resolution)$/.test(e.constraint ?? '')) {
      throw new LedgerConflictError(`${what}: a concurrent transfer resolved it first (${e.constraint})`);
    }
    throw err;
  }
}

/**
 * Settles a reservation for what the provider reported. Up to the reserved amount is posted from the
 * reservation and the rest released; anything above it is an `overage-<id>` transfer that may take the
 * balance below zero, which sets overage_blocked (no new reservations until a top-up covers it).
 */
export async function postReservation(tx: Executor, input: PostInput): Promise<PostResult> {
  const amount = checkAmount(input.amount);
  checkAmount(input.tokens);
  const id = transferIds.post(input.fineTuneId);
  const { reservation, resolution, overageAmount } = await lockReservation(tx, input.fineTuneId);
  const reserved = BigInt(reservation.amount);
  if (resolution) {
    if (resolution.id !== id) throw new LedgerConflictError(`reservation of ${input.fineTuneId} was voided`);
    const charged = BigInt(resolution.amount) + overageAmount;
    if (
      charged !== input.amount ||
      BigInt(resolution.tokens ?? -1) !== input.tokens ||
      resolution.model !== input.model
    ) {
      throw conflict(id, `charged ${charged}, tokens ${resolution.tokens}, model ${resolution.model}`);
    }
    return { charged, released: reserved - BigInt(resolution.amount), overage: overageAmount };
  }
  const posted = input.amount < reserved ? input.amount : reserved;
  const over = input.amount - posted;
  const common = {
    license: reservation.license_id,
    account: reservation.debit_account_id,
    revenue: reservation.credit_account_id,
  };
  await asConflict(`post ${id}`, () =>
    sql`
    WITH debited AS (
      UPDATE ledger_accounts
      SET debits_pending = debits_pending - ${reserved.toString()}::bigint,
          debits_posted = debits_posted + ${amount}::bigint,
          overage_blocked = overage_blocked OR credits_posted - debits_posted - ${amount}::bigint
            - (debits_pending - ${reserved.toString()}::bigint) < 0
      WHERE id = ${common.account}
      RETURNING credits_posted - debits_posted - debits_pending AS available
    ), credited AS (
      UPDATE ledger_accounts
      SET credits_pending = credits_pending - ${reserved.toString()}::bigint,
          credits_posted = credits_posted + ${amount}::bigint
      WHERE id = ${common.revenue} AND EXISTS (SELECT 1 FROM debited)
      RETURNING 1
    ), post AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
        license_id, fine_tune_id, model, tokens)
      VALUES (${id}, 'post', ${common.account}, ${common.revenue}, ${posted.toString()}::bigint,
        ${reservation.id}, ${common.license}, ${input.fineTuneId}::uuid, ${input.model}, ${input.tokens.toString()}::bigint)
      RETURNING 1
    ), overage AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount,
        license_id, fine_tune_id, model, tokens, memo)
      SELECT ${transferIds.overage(input.fineTuneId)}, 'overage', ${common.account}, ${common.revenue},
        ${over.toString()}::bigint, ${common.license}, ${input.fineTuneId}::uuid, ${input.model},
        ${input.tokens.toString()}::bigint,
        CASE WHEN d.available < 0 THEN 'uncovered ' || least(-d.available, ${over.toString()}::bigint)
             ELSE 'covered' END
      FROM debited d WHERE ${over.toString()}::bigint > 0
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM credited) + (SELECT count(*) FROM post) + (SELECT count(*) FROM overage)
  `.execute(tx),
  );
  return { charged: input.amount, released: reserved - posted, overage: over };
}

/** Releases a whole reservation (failed or cancelled fine-tune with nothing to charge). */
export async function voidReservation(
  tx: Executor,
  input: { fineTuneId: string },
): Promise<{ released: bigint }> {
  const id = transferIds.void(input.fineTuneId);
  const { reservation, resolution } = await lockReservation(tx, input.fineTuneId);
  if (resolution) {
    if (resolution.id !== id)
      throw new LedgerConflictError(`reservation of ${input.fineTuneId} was already posted`);
    return { released: BigInt(resolution.amount) };
  }
  const amount = reservation.amount;
  await asConflict(`void ${id}`, () =>
    sql`
    WITH debited AS (
      UPDATE ledger_accounts SET debits_pending = debits_pending - ${amount}::bigint
      WHERE id = ${reservation.debit_account_id} RETURNING 1
    ), credited AS (
      UPDATE ledger_accounts SET credits_pending = credits_pending - ${amount}::bigint
      WHERE id = ${reservation.credit_account_id} AND EXISTS (SELECT 1 FROM debited) RETURNING 1
    )
    INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
      license_id, fine_tune_id, model)
    SELECT ${id}, 'void', ${reservation.debit_account_id}, ${reservation.credit_account_id}, ${amount}::bigint,
      ${reservation.id}, ${reservation.license_id}, ${input.fineTuneId}::uuid, ${reservation.model}
    FROM debited, credited
  `.execute(tx),
  );
  return { released: BigInt(amount) };
}

/** The reservation of a fine-tune, if one was made (billing decides between post and void with it). */
export async function findReservation(
  tx: Executor,
  fineTuneId: string,
): Promise<{ amount: bigint; licenseId: string } | undefined> {
  const row = await findTransfer(tx, transferIds.reserve(fineTuneId));
  return row ? { amount: BigInt(row.amount), licenseId: row.license_id ?? '' } : undefined;
}
