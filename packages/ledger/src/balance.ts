import type { Executor } from '@tuneline/db';
import { licenseAccountId } from './accounts.ts';

export interface Balance {
  /** Credits granted minus credits charged. Negative only after an uncovered overage. */
  posted: bigint;
  /** Credits held by open reservations. */
  pending: bigint;
  /** What a new reservation can take: posted - pending. */
  available: bigint;
  overageBlocked: boolean;
}

export async function getBalance(db: Executor, licenseId: string): Promise<Balance> {
  const row = await db
    .selectFrom('ledger_accounts')
    .select(['credits_posted', 'debits_posted', 'debits_pending', 'overage_blocked'])
    .where('id', '=', licenseAccountId(licenseId))
    .executeTakeFirst();
  if (!row) return { posted: 0n, pending: 0n, available: 0n, overageBlocked: false };
  const posted = BigInt(row.credits_posted) - BigInt(row.debits_posted);
  const pending = BigInt(row.debits_pending);
  return { posted, pending, available: posted - pending, overageBlocked: row.overage_blocked };
}

export type UsageKind = 'grant' | 'reservation' | 'charge' | 'overage' | 'release' | 'evaluation' | 'hosting';

export interface UsageEntry {
  transferId: string;
  at: Date;
  kind: UsageKind;
  fineTuneId: string | null;
  model: string | null;
  tokens: bigint | null;
  memo: string | null;
  /** The credits this entry moves (always >= 0; `kind` says which way). */
  amount: bigint;
  /** Running balances after this entry, in the ledger's write order. */
  posted: bigint;
  available: bigint;
}

/** Posted transfers that show as their own kind in the usage log (the rest are charges). */
const OWN_KIND: Record<string, UsageKind> = { grant: 'grant', evaluation: 'evaluation', hosting: 'hosting' };

/**
 * Every grant, reservation, charge, overage and release of a license with the fine-tune, model and
 * tokens, and the running balance. A post yields a charge plus a release of the unused reservation
 * (less what it keeps held for the evaluation); an evaluation yields its charge plus a release of what
 * the hold kept and the evaluation did not use; an inference call yields its charge only (its hold
 * while it is open).
 */
export async function usageLog(db: Executor, licenseId: string): Promise<UsageEntry[]> {
  const account = licenseAccountId(licenseId);
  const rows = await db
    .selectFrom('ledger_transfers as t')
    .leftJoin('ledger_transfers as r', 'r.id', 't.pending_id')
    .select([
      't.id',
      't.kind',
      't.amount',
      't.created_at',
      't.fine_tune_id',
      't.model',
      't.tokens',
      't.memo',
      't.debit_account_id',
      't.pending_id',
      'r.amount as reserved',
    ])
    .where((eb) => eb.or([eb('t.debit_account_id', '=', account), eb('t.credit_account_id', '=', account)]))
    .orderBy('t.seq')
    .execute();
  let posted = 0n;
  let pending = 0n;
  const log: UsageEntry[] = [];
  const push = (row: (typeof rows)[number], kind: UsageKind, amount: bigint) =>
    log.push({
      transferId: row.id,
      at: row.created_at,
      kind,
      fineTuneId: row.fine_tune_id,
      model: row.model,
      tokens: row.tokens === null ? null : BigInt(row.tokens),
      memo: row.memo,
      amount,
      posted,
      available: posted - pending,
    });
  // An inference hold that was resolved is left out (its usage is the one charge; a released hold
  // moved nothing): a gateway call is one line, not three. A hold still open shows as a reservation.
  const resolvedHolds = new Set<string>();
  // The part of a reservation its post kept held for the evaluation (written with the post, by
  // fine-tune): not released by the post, released (what is left of it) by the evaluation's charge.
  const evaluationHolds = new Map<string, bigint>();
  for (const row of rows) {
    if ((row.kind === 'usage' || row.kind === 'release') && row.pending_id) resolvedHolds.add(row.pending_id);
    if (row.kind === 'evaluation_hold' && row.fine_tune_id)
      evaluationHolds.set(row.fine_tune_id, BigInt(row.amount));
  }
  for (const row of rows) {
    const amount = BigInt(row.amount);
    if (row.kind === 'release' || row.kind === 'evaluation_hold') continue;
    if (row.kind === 'hold' && resolvedHolds.has(row.id)) continue;
    const sign = row.debit_account_id === account ? -1n : 1n;
    switch (row.kind) {
      case 'hold':
      case 'reserve':
        pending += amount;
        push(row, 'reservation', amount);
        break;
      case 'post': {
        const kept = (row.fine_tune_id && evaluationHolds.get(row.fine_tune_id)) || 0n;
        const released = BigInt(row.reserved ?? row.amount) - amount - kept;
        pending -= amount;
        posted -= amount;
        push(row, 'charge', amount);
        if (released > 0n) {
          pending -= released;
          push(row, 'release', released);
        }
        break;
      }
      case 'evaluation': {
        // A run's charge resolving its evaluation hold (or, without one, posted on its own).
        const held = row.pending_id ? BigInt(row.reserved ?? 0) : 0n;
        posted -= amount;
        pending -= held;
        if (amount > 0n) push(row, 'evaluation', amount);
        if (held > amount) push(row, 'release', held - amount);
        break;
      }
      case 'void':
        pending -= amount;
        push(row, 'release', amount);
        break;
      case 'overage':
        posted -= amount;
        push(row, 'overage', amount);
        break;
      default:
        // grant (and any other posted transfer: inference usage, hosting) moves the posted balance.
        posted += sign * amount;
        push(row, OWN_KIND[row.kind] ?? 'charge', amount);
    }
  }
  return log;
}
