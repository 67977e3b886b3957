import type { Executor, LedgerTransfer } from '@tuneline/db';
import { CompiledQuery, type QueryResult, sql } from 'kysely';
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
 * UPDATE depends on the license UPDATE's result); without that, Postgres may run the CTEs in either
 * order and a reserve and a post meeting on one stripe can deadlock. A post or void inserts its
 * resolution before both (only a post or void of the same reservation can wait on that insert).
 *
 * Every operation but a first grant is one statement on its happy path: outside a transaction it is
 * one round trip and commits by itself; inside a caller's transaction it is one statement of it.
 */

/**
 * The hot statements, written once: sent as ready CompiledQuery objects they skip Kysely's query
 * builder and compiler on every call (the functions are in migration 0006_ledger_functions).
 */
const RESERVE_SQL = 'SELECT ledger_reserve($1, $2, $3, $4::bigint, $5, $6::uuid, $7) AS inserted';
const POST_SQL =
  'SELECT o_reserved AS reserved, o_posted AS posted FROM ledger_post($1, $2, $3, $4::bigint, $5::uuid, $6, $7::bigint)';
const VOID_SQL = 'SELECT o_released AS released FROM ledger_void($1, $2, $3::uuid)';
const POST_HOLDING_SQL =
  'SELECT o_reserved AS reserved, o_posted AS posted, o_held AS held FROM ledger_post_holding_rest($1, $2, $3, $4, $5::bigint, $6::uuid, $7, $8::bigint)';

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
  /**
   * The fine-tune's evaluation runs next: instead of releasing the reservation's unused part, hold it
   * (`evaluation_hold-<id>`, in the same statement) until the evaluation is charged (`chargeEvaluationRun`).
   */
  holdRestForEvaluation?: boolean;
}

export interface PostResult {
  charged: bigint;
  /** Given back to the license now. */
  released: bigint;
  overage: bigint;
  /** With `holdRestForEvaluation`: what is kept held for the evaluation (not released). */
  heldForEvaluation?: bigint;
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

/**
 * The largest single grant: 10^15 credits (USD 10^12). Far below bigint's 2^63 - 1, so the sums the
 * accounts keep (a license's credits, a grants stripe's debits) stay inside bigint for any realistic
 * number of grants; a grant beyond bigint itself used to fail inside Postgres (a 500).
 */
export const MAX_GRANT_CREDITS = 1_000_000_000_000_000n;

/** Top-up: the grants account pays the license. Clears overage_blocked once the balance is back >= 0. */
export async function grantCredits(tx: Executor, input: GrantInput): Promise<void> {
  const amount = checkAmount(input.amount);
  if (input.amount > MAX_GRANT_CREDITS) {
    throw new RangeError(`a grant is at most ${MAX_GRANT_CREDITS} credits (got ${input.amount})`);
  }
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
  // The replay check rides in the statement (NOT EXISTS), so a new reservation is one round trip.
  // ledger_reserve (migration 0006) is that one statement, its plan kept by the session.
  const result = (await tx.executeQuery(
    CompiledQuery.raw(RESERVE_SQL, [
      id,
      account,
      revenue,
      amount,
      input.licenseId,
      input.fineTuneId,
      input.model,
    ]),
  )) as QueryResult<{ inserted: string }>;
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

/**
 * How a reservation was resolved, read after a post or void inserted nothing. A statement of its own
 * (so with a fresh snapshot under READ COMMITTED): it sees a resolver that committed while the failed
 * insert waited on it.
 */
async function readResolution(
  tx: Executor,
  fineTuneId: string,
): Promise<{
  reservation: LedgerTransfer;
  resolution: Pick<LedgerTransfer, 'id' | 'amount' | 'tokens' | 'model'> | undefined;
  overageAmount: bigint;
}> {
  const reserveId = transferIds.reserve(fineTuneId);
  const rows = await tx
    .selectFrom('ledger_transfers')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('id', '=', reserveId),
        eb('pending_id', '=', reserveId),
        eb('id', '=', transferIds.overage(fineTuneId)),
      ]),
    )
    .execute();
  const reservation = rows.find((r) => r.id === reserveId);
  if (!reservation) throw new LedgerNotFoundError(`no reservation ${reserveId}`);
  return {
    reservation,
    resolution: rows.find((r) => r.pending_id === reserveId),
    overageAmount: BigInt(rows.find((r) => r.kind === 'overage')?.amount ?? 0),
  };
}

/**
 * Settles a reservation for what the provider reported. Up to the reserved amount is posted from the
 * reservation and the rest released (or, with `holdRestForEvaluation`, held on as `evaluation_hold-<id>`
 * until the evaluation is charged: `ledger_post_holding_rest`, migration 0060); anything above it is an
 * `overage-<id>` transfer that may take the balance below zero, which sets overage_blocked (no new
 * reservations until a top-up covers it).
 *
 * One statement (so, outside a transaction, one round trip and its own transaction). It inserts the
 * resolution first, ON CONFLICT DO NOTHING: the unique index on pending_id (and the primary key) make a
 * concurrent post or void of the same reservation wait for the first one's commit and then insert
 * nothing, and only a resolution actually inserted moves the account counters (each UPDATE joins the
 * row the previous step returned). Nothing inserted: replay, conflict or unknown reservation, told
 * apart by a second read.
 */
export async function postReservation(tx: Executor, input: PostInput): Promise<PostResult> {
  const amount = checkAmount(input.amount);
  const tokens = checkAmount(input.tokens);
  const id = transferIds.post(input.fineTuneId);
  const reserveId = transferIds.reserve(input.fineTuneId);
  const holding = input.holdRestForEvaluation === true;
  const result = (await tx.executeQuery(
    holding
      ? CompiledQuery.raw(POST_HOLDING_SQL, [
          reserveId,
          id,
          transferIds.overage(input.fineTuneId),
          transferIds.evaluationHold(input.fineTuneId),
          amount,
          input.fineTuneId,
          input.model,
          tokens,
        ])
      : CompiledQuery.raw(POST_SQL, [
          reserveId,
          id,
          transferIds.overage(input.fineTuneId),
          amount,
          input.fineTuneId,
          input.model,
          tokens,
        ]),
  )) as QueryResult<{ reserved: string; posted: string | null; held?: string | null }>;
  const row = result.rows[0];
  if (row && row.posted !== null) {
    const reserved = BigInt(row.reserved);
    const posted = BigInt(row.posted);
    const held = BigInt(row.held ?? 0);
    return {
      charged: input.amount,
      released: reserved - posted - held,
      overage: input.amount - posted,
      ...(holding ? { heldForEvaluation: held } : {}),
    };
  }
  const { reservation, resolution, overageAmount } = await readResolution(tx, input.fineTuneId);
  if (!resolution) {
    // Nothing inserted and nothing resolves it: the insert met a resolver that then rolled back.
    throw new LedgerConflictError(
      `post ${id}: a concurrent resolution of ${reserveId} was rolled back; retry`,
    );
  }
  if (resolution.id !== id) throw new LedgerConflictError(`reservation of ${input.fineTuneId} was voided`);
  const charged = BigInt(resolution.amount) + overageAmount;
  if (
    charged !== input.amount ||
    BigInt(resolution.tokens ?? -1) !== input.tokens ||
    resolution.model !== input.model
  ) {
    throw conflict(id, `charged ${charged}, tokens ${resolution.tokens}, model ${resolution.model}`);
  }
  // A replay: the same post, holding (or not) as the first one did.
  const hold = await findTransfer(tx, transferIds.evaluationHold(input.fineTuneId));
  if ((hold !== undefined) !== holding) {
    throw conflict(id, hold ? 'posted holding the rest for an evaluation' : 'posted releasing the rest');
  }
  const held = hold ? BigInt(hold.amount) : 0n;
  return {
    charged,
    released: BigInt(reservation.amount) - BigInt(resolution.amount) - held,
    overage: overageAmount,
    ...(holding ? { heldForEvaluation: held } : {}),
  };
}

/**
 * Releases a whole reservation (failed or cancelled fine-tune with nothing to charge). One statement,
 * like postReservation: the resolution first (ON CONFLICT DO NOTHING), the counters only if it was
 * inserted.
 */
export async function voidReservation(
  tx: Executor,
  input: { fineTuneId: string },
): Promise<{ released: bigint }> {
  const id = transferIds.void(input.fineTuneId);
  const reserveId = transferIds.reserve(input.fineTuneId);
  const result = (await tx.executeQuery(
    CompiledQuery.raw(VOID_SQL, [reserveId, id, input.fineTuneId]),
  )) as QueryResult<{ released: string | null }>;
  const released = result.rows[0]?.released;
  if (released !== null && released !== undefined) return { released: BigInt(released) };
  const { resolution } = await readResolution(tx, input.fineTuneId);
  if (!resolution) {
    throw new LedgerConflictError(
      `void ${id}: a concurrent resolution of ${reserveId} was rolled back; retry`,
    );
  }
  if (resolution.id !== id)
    throw new LedgerConflictError(`reservation of ${input.fineTuneId} was already posted`);
  return { released: BigInt(resolution.amount) };
}

/** The reservation of a fine-tune, if one was made (billing decides between post and void with it). */
export async function findReservation(
  tx: Executor,
  fineTuneId: string,
): Promise<{ amount: bigint; licenseId: string } | undefined> {
  const row = await findTransfer(tx, transferIds.reserve(fineTuneId));
  return row ? { amount: BigInt(row.amount), licenseId: row.license_id ?? '' } : undefined;
}
