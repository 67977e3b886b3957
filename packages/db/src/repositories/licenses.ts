import type { Executor } from '../connection.ts';
import type { LicenseRow } from '../schema.ts';
import { firstRecord } from './records.ts';

/** Licenses and their API keys (only SHA-256 hashes of keys are stored). */

export interface LicenseRecord {
  id: string;
  name: string;
  /** The license's provider; null: the deployment default. */
  provider: string | null;
  createdAt: Date;
}

const toLicenseRecord = (row: LicenseRow): LicenseRecord => ({
  id: row.id,
  name: row.name,
  provider: row.provider,
  createdAt: row.created_at,
});

/** Creates a license; undefined when one with this id exists (it is left as it is). */
export async function insertLicense(
  db: Executor,
  license: { id: string; name: string; provider?: string | null },
): Promise<LicenseRecord | undefined> {
  return firstRecord(
    db
      .insertInto('licenses')
      .values(license)
      .onConflict((oc) => oc.column('id').doNothing())
      .returningAll(),
    toLicenseRecord,
  );
}

export async function findLicense(db: Executor, id: string): Promise<LicenseRecord | undefined> {
  return firstRecord(db.selectFrom('licenses').selectAll().where('id', '=', id), toLicenseRecord);
}

/** Names the license's provider (null: back to the deployment default); undefined if no such license. */
export async function setLicenseProvider(
  db: Executor,
  id: string,
  provider: string | null,
): Promise<LicenseRecord | undefined> {
  return firstRecord(
    db.updateTable('licenses').set({ provider }).where('id', '=', id).returningAll(),
    toLicenseRecord,
  );
}

export interface NewApiKey {
  /** null: an admin key. */
  licenseId: string | null;
  keyHash: string;
  keyPrefix: string;
}

/** Stores a key's hash; a license key when it has a license, else an admin key. Returns its id. */
export async function insertApiKey(db: Executor, key: NewApiKey): Promise<string> {
  const row = await db
    .insertInto('api_keys')
    .values({
      license_id: key.licenseId,
      key_hash: key.keyHash,
      key_prefix: key.keyPrefix,
      role: key.licenseId ? 'license' : 'admin',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Who holds the unrevoked key with this hash, if anyone. */
export async function findApiKeyHolder(
  db: Executor,
  keyHash: string,
): Promise<{ role: 'license' | 'admin'; licenseId: string | null; keyPrefix: string } | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(['license_id', 'role', 'key_prefix'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { role: row.role, licenseId: row.license_id, keyPrefix: row.key_prefix } : undefined;
}
