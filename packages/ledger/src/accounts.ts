import { createHash } from 'node:crypto';
import type { Executor } from '@tuneline/db';

/** Each system account is striped over this many rows (see migration 0002). */
export const SYSTEM_STRIPES = 16;

export function licenseAccountId(licenseId: string): string {
  return `license-${licenseId}`;
}

/** The stripe a license always uses, so its transfers meet the same system rows. */
function stripe(licenseId: string): number {
  return createHash('sha256').update(licenseId).digest().readUInt16BE(0) % SYSTEM_STRIPES;
}

export function grantsAccountId(licenseId: string): string {
  return `system-grants-${stripe(licenseId)}`;
}

export function revenueAccountId(licenseId: string): string {
  return `system-revenue-${stripe(licenseId)}`;
}

export const transferIds = {
  grant: (grantId: string) => `grant-${grantId}`,
  reserve: (fineTuneId: string) => `reserve-${fineTuneId}`,
  post: (fineTuneId: string) => `post-${fineTuneId}`,
  void: (fineTuneId: string) => `void-${fineTuneId}`,
  overage: (fineTuneId: string) => `overage-${fineTuneId}`,
};

/** Creates the license's account if missing (idempotent). */
export async function ensureLicenseAccount(tx: Executor, licenseId: string): Promise<void> {
  await tx
    .insertInto('ledger_accounts')
    .values({ id: licenseAccountId(licenseId), license_id: licenseId, kind: 'license' })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}
