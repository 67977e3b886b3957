import { randomUUID } from 'node:crypto';
import type { Database, Db } from '@tuneline/db';
import type { Insertable } from 'kysely';

type RequestRow = Insertable<Database['fine_tune_requests']>;
type DatasetRow = Insertable<Database['datasets']>;
type DatasetDefaults = 'dump' | 'auto_train' | 'job_options';

/**
 * A dataset row and the fine-tune request row it hangs off, inserted directly, standing for what the
 * dataset builder writes. The request is a `built` one with a fresh request and correlation id unless
 * `request` says otherwise; the dataset shares its license and correlation id and takes `dataset`'s
 * columns (mapped dump, no auto-train and no job options unless given).
 */
export async function insertDatasetRow(
  db: Db,
  licenseId: string,
  dataset: Omit<DatasetRow, 'request_row_id' | 'license_id' | 'correlation_id' | DatasetDefaults> &
    Partial<Pick<DatasetRow, DatasetDefaults>>,
  request: Partial<Omit<RequestRow, 'license_id'>> = {},
): Promise<{ datasetId: string; correlationId: string }> {
  const requestRow = await db
    .insertInto('fine_tune_requests')
    .values({
      license_id: licenseId,
      request_id: `req-${randomUUID()}`,
      content_hash: 'x'.repeat(64),
      correlation_id: randomUUID(),
      payload: JSON.stringify({}),
      status: 'built',
      ...request,
    })
    .returning(['id', 'correlation_id'])
    .executeTakeFirstOrThrow();
  const row = await db
    .insertInto('datasets')
    .values({
      request_row_id: requestRow.id,
      license_id: licenseId,
      correlation_id: requestRow.correlation_id,
      dump: 'mapped',
      auto_train: false,
      job_options: JSON.stringify({}),
      ...dataset,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { datasetId: row.id, correlationId: requestRow.correlation_id };
}
