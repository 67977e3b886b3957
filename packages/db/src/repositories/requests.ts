import type { Executor } from '../connection.ts';
import type { FineTuneRequestRow } from '../schema.ts';
import { type Camelized, camelized } from './camel.ts';
import { firstRecord } from './records.ts';

/**
 * A stored fine-tune request (`fine_tune_requests`), one per (licenseId, requestId), camelCase;
 * `payload` is the validated FineTuneRequest as received.
 */
export type StoredRequest = Camelized<FineTuneRequestRow>;

export interface NewRequest {
  licenseId: string;
  requestId: string;
  contentHash: string;
  correlationId: string;
  payload: unknown;
}

/**
 * Stores a request once per (licenseId, requestId). Returns the stored row, which is the earlier one
 * when the id was already used (`created: false`); the caller compares content hashes. A stored row is
 * never overwritten.
 */
export async function storeRequest(
  db: Executor,
  input: NewRequest,
): Promise<{ request: StoredRequest; created: boolean }> {
  const inserted = await db
    .insertInto('fine_tune_requests')
    .values({
      license_id: input.licenseId,
      request_id: input.requestId,
      content_hash: input.contentHash,
      correlation_id: input.correlationId,
      payload: JSON.stringify(input.payload),
    })
    .onConflict((oc) => oc.columns(['license_id', 'request_id']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { request: camelized(inserted), created: true };
  const existing = await findRequest(db, input.licenseId, input.requestId);
  if (!existing) throw new Error(`fine_tune_requests row ${input.licenseId}/${input.requestId} vanished`);
  return { request: existing, created: false };
}

/** Every column of `fine_tune_requests`, as a select to narrow. */
const requests = (db: Executor) => db.selectFrom('fine_tune_requests').selectAll();

export async function findRequest(
  db: Executor,
  licenseId: string,
  requestId: string,
): Promise<StoredRequest | undefined> {
  return firstRecord(
    requests(db).where('license_id', '=', licenseId).where('request_id', '=', requestId),
    camelized,
  );
}

export async function findRequestById(db: Executor, id: string): Promise<StoredRequest | undefined> {
  return firstRecord(requests(db).where('id', '=', id), camelized);
}

/** Locks the row for the rest of the transaction and returns its current state. */
export async function lockRequest(tx: Executor, id: string): Promise<StoredRequest | undefined> {
  return firstRecord(requests(tx).where('id', '=', id).forUpdate(), camelized);
}

/**
 * Moves a `received` request to `built` or `rejected`. Returns false when it was no longer `received`
 * (another worker finished it first), so a second run changes nothing.
 */
export async function finishRequest(
  tx: Executor,
  id: string,
  status: 'built' | 'rejected',
  error: string | null = null,
): Promise<boolean> {
  const result = await tx
    .updateTable('fine_tune_requests')
    .set({ status, error, updated_at: new Date() })
    .where('id', '=', id)
    .where('status', '=', 'received')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Requests stored but not built yet (oldest first): what the recovery sweep re-drives. */
export async function listWaitingRequests(db: Executor, limit = 100): Promise<StoredRequest[]> {
  const rows = await requests(db)
    .where('status', '=', 'received')
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(camelized);
}
