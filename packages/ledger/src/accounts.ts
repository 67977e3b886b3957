import { createHash } from 'node:crypto';
import type { Executor } from '@tuneline/db';
import { sql } from 'kysely';

/** Each system account is striped over this many rows (see migration 0002). */
export const SYSTEM_STRIPES = 64;

export function licenseAccountId(licenseId: string): string {
  return `license-${licenseId}`;
}

/**
 * The stripe of a transfer, from its own key (grant id, fine-tune id): concurrent transfers, even of
 * one license, spread over the stripes. A post or void uses its reservation's stripe.
 */
function stripe(key: string): number {
  return createHash('sha256').update(key).digest().readUInt16BE(0) % SYSTEM_STRIPES;
}

export function grantsAccountId(grantId: string): string {
  return `system-grants-${stripe(grantId)}`;
}

export function revenueAccountId(fineTuneId: string): string {
  return `system-revenue-${stripe(fineTuneId)}`;
}

export const transferIds = {
  grant: (grantId: string) => `grant-${grantId}`,
  reserve: (fineTuneId: string) => `reserve-${fineTuneId}`,
  post: (fineTuneId: string) => `post-${fineTuneId}`,
  void: (fineTuneId: string) => `void-${fineTuneId}`,
  overage: (fineTuneId: string) => `overage-${fineTuneId}`,
  /** The reservation's unused part, held from settlement until the evaluation is charged. */
  evaluationHold: (fineTuneId: string) => `evaluation_hold-${fineTuneId}`,
  /** A fine-tune's evaluation run, charged once when it ends (resolves the evaluation hold). */
  evaluation: (fineTuneId: string) => `evaluation-${fineTuneId}`,
};

/** Creates the license's account if missing (idempotent). */
export async function ensureLicenseAccount(tx: Executor, licenseId: string): Promise<void> {
  await tx
    .insertInto('ledger_accounts')
    .values({ id: licenseAccountId(licenseId), license_id: licenseId, kind: 'license' })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/**
 * The two CTEs that post a batch of charges, after a CTE `total (amount, n)` of what was inserted now:
 * `debited` takes the sum from `account` (a license; blocked as by an overage when it goes below zero)
 * and `credited` gives it to `credit`, only when something was charged. One statement with the inserts,
 * so a replay that inserts nothing moves nothing.
 */
export function postChargesLegs(account: string, credit: string) {
  return sql`debited AS (
      UPDATE ledger_accounts
      SET debits_posted = debits_posted + t.amount,
          overage_blocked = overage_blocked
            OR credits_posted - debits_posted - t.amount - debits_pending < 0
      FROM total t WHERE id = ${account} AND t.n > 0
      RETURNING 1
    ), credited AS (
      UPDATE ledger_accounts SET credits_posted = credits_posted + t.amount
      FROM total t WHERE id = ${credit} AND EXISTS (SELECT 1 FROM debited)
      RETURNING 1
    )`;
}
