import { createHash } from 'node:crypto';
import type { Executor } from '@tuneline/db';

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
