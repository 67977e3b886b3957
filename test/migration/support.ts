import { fineTuneRequestSchema } from '@tuneline/contracts';
import { autoTrainFineTuneId, type Db, inTransaction, migrationRequestId, queueOutcome } from '@tuneline/db';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import { type AnyJson, request } from '../api/support.ts';

// What the migration tests share: an old model whose stored request is a real one, and a new model
// standing for what a migration's request trained.

/** A trained fine-tune whose stored request is a real one (12 documents, 20% testing). */
export async function trainedFineTune(
  db: Db,
  licenseId: string,
  over: { provider?: string | null; active?: boolean; payload?: unknown } = {},
): Promise<{ id: string; payload: AnyJson }> {
  const datasetId = await makeDataset(db, licenseId, 'uploaded');
  const payload = over.payload ?? fineTuneRequestSchema.parse({ ...request(`orig-${datasetId}`), licenseId });
  const dataset = await db
    .selectFrom('datasets')
    .select('request_row_id')
    .where('id', '=', datasetId)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('fine_tune_requests')
    .set({ payload: JSON.stringify(payload) })
    .where('id', '=', dataset.request_row_id)
    .execute();
  const id = await makeFineTune(db, licenseId, datasetId, { active: over.active ?? true });
  if (over.provider !== undefined)
    await db.updateTable('fine_tunes').set({ provider: over.provider }).where('id', '=', id).execute();
  return { id, payload };
}

/** The new model's dataset (no testing file) and auto-train fine-tune under the migration's request id. */
export async function newFineTune(
  db: Db,
  licenseId: string,
  migrationId: string,
  status: 'succeeded' | 'running',
  provider = 'azure',
) {
  const datasetId = await makeDataset(db, licenseId, 'uploaded');
  const dataset = await db
    .selectFrom('datasets')
    .selectAll()
    .where('id', '=', datasetId)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('fine_tune_requests')
    .set({ request_id: migrationRequestId(migrationId) })
    .where('id', '=', dataset.request_row_id)
    .execute();
  await db
    .updateTable('datasets')
    .set({ test_path: null, test_examples: 0 })
    .where('id', '=', datasetId)
    .execute();
  const made = await makeFineTune(db, licenseId, datasetId, { status });
  const id = autoTrainFineTuneId(datasetId);
  await db.updateTable('fine_tunes').set({ id, provider }).where('id', '=', made).execute();
  return db.selectFrom('fine_tunes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Its outcome known, as the lifecycle learns it (the migration ends here). */
export const outcome = (
  db: Db,
  f: { id: string; status: string; notify_emails: string[]; correlation_id: string },
) =>
  inTransaction(db, (tx) =>
    queueOutcome(tx, {
      id: f.id,
      status: f.status as 'succeeded',
      notifyEmails: f.notify_emails,
      correlationId: f.correlation_id,
    }),
  );
