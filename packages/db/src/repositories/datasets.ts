import { sql, type UpdateObject } from 'kysely';
import type { Executor } from '../connection.ts';
import type { Database, DatasetRow, DatasetStatus } from '../schema.ts';
import { bigintOrNull, firstRecord } from './records.ts';

/** A `datasets` row with bigint columns as bigint and json columns parsed. */
export interface DatasetRecord {
  id: string;
  requestRowId: string;
  licenseId: string;
  correlationId: string;
  baseModel: string;
  /** null: the deployment's default provider. */
  provider: string | null;
  status: DatasetStatus;
  dump: 'all' | 'mapped';
  testPercent: number;
  contentHash: string | null;
  shortHash: string | null;
  /** Storage keys of the files. */
  trainPath: string | null;
  testPath: string | null;
  /** SHA-256 of each file as written (null for datasets built before it was recorded). */
  trainSha256: string | null;
  testSha256: string | null;
  trainExamples: number;
  testExamples: number;
  trainTokens: bigint;
  testTokens: bigint;
  epochs: number | null;
  estimatedBilledTokens: bigint | null;
  estimatedCredits: bigint | null;
  warnings: unknown[];
  errors: unknown[];
  trainFileId: string | null;
  testFileId: string | null;
  autoTrain: boolean;
  jobOptions: unknown;
  createdAt: Date;
  updatedAt: Date;
}

export function toDatasetRecord(row: DatasetRow): DatasetRecord {
  return {
    id: row.id,
    requestRowId: row.request_row_id,
    licenseId: row.license_id,
    correlationId: row.correlation_id,
    baseModel: row.base_model,
    provider: row.provider,
    status: row.status,
    dump: row.dump,
    testPercent: row.test_percent,
    contentHash: row.content_hash,
    shortHash: row.short_hash,
    trainPath: row.train_path,
    testPath: row.test_path,
    trainSha256: row.train_sha256,
    testSha256: row.test_sha256,
    trainExamples: row.train_examples,
    testExamples: row.test_examples,
    trainTokens: BigInt(row.train_tokens),
    testTokens: BigInt(row.test_tokens),
    epochs: row.epochs,
    estimatedBilledTokens: bigintOrNull(row.estimated_billed_tokens),
    estimatedCredits: bigintOrNull(row.estimated_credits),
    warnings: row.warnings,
    errors: row.errors,
    trainFileId: row.train_file_id,
    testFileId: row.test_file_id,
    autoTrain: row.auto_train,
    jobOptions: row.job_options,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What the dataset builder stores: a record without the ids and times the database assigns, nor file ids. */
export type NewDatasetRecord = Omit<
  DatasetRecord,
  'id' | 'status' | 'trainFileId' | 'testFileId' | 'createdAt' | 'updatedAt' | 'trainSha256' | 'testSha256'
> & { status: 'ready' | 'invalid'; trainSha256?: string | null; testSha256?: string | null };

/**
 * Inserts the dataset of a request; one per request (unique `request_row_id`). Returns the stored row
 * and whether this call created it.
 */
export async function insertDataset(
  tx: Executor,
  d: NewDatasetRecord,
): Promise<{ dataset: DatasetRecord; created: boolean }> {
  const inserted = await tx
    .insertInto('datasets')
    .values({
      request_row_id: d.requestRowId,
      license_id: d.licenseId,
      correlation_id: d.correlationId,
      base_model: d.baseModel,
      provider: d.provider,
      status: d.status,
      dump: d.dump,
      test_percent: d.testPercent,
      content_hash: d.contentHash,
      short_hash: d.shortHash,
      train_path: d.trainPath,
      test_path: d.testPath,
      train_sha256: d.trainSha256 ?? null,
      test_sha256: d.testSha256 ?? null,
      train_examples: d.trainExamples,
      test_examples: d.testExamples,
      train_tokens: d.trainTokens.toString(),
      test_tokens: d.testTokens.toString(),
      epochs: d.epochs,
      estimated_billed_tokens: d.estimatedBilledTokens?.toString() ?? null,
      estimated_credits: d.estimatedCredits?.toString() ?? null,
      warnings: JSON.stringify(d.warnings),
      errors: JSON.stringify(d.errors),
      auto_train: d.autoTrain,
      job_options: JSON.stringify(d.jobOptions),
    })
    .onConflict((oc) => oc.column('request_row_id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { dataset: toDatasetRecord(inserted), created: true };
  const existing = await findDatasetByRequestRow(tx, d.requestRowId);
  if (!existing) throw new Error(`dataset of request ${d.requestRowId} vanished`);
  return { dataset: existing, created: false };
}

/** Every column of `datasets`, as a select to narrow. */
const datasets = (db: Executor) => db.selectFrom('datasets').selectAll();

export async function findDataset(db: Executor, id: string): Promise<DatasetRecord | undefined> {
  return firstRecord(datasets(db).where('id', '=', id), toDatasetRecord);
}

export async function findDatasetByRequestRow(
  db: Executor,
  requestRowId: string,
): Promise<DatasetRecord | undefined> {
  return firstRecord(datasets(db).where('request_row_id', '=', requestRowId), toDatasetRecord);
}

/** The datasets grid of a license, newest first. */
export async function listDatasets(db: Executor, licenseId: string, limit = 100): Promise<DatasetRecord[]> {
  const rows = await datasets(db)
    .where('license_id', '=', licenseId)
    .orderBy('created_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toDatasetRecord);
}

/** Ready datasets with `auto_train` whose upload has not started: their `files-upload` message is due. */
export async function listDatasetsAwaitingAutoUpload(db: Executor, limit = 500): Promise<DatasetRecord[]> {
  const rows = await datasets(db)
    .where('status', '=', 'ready')
    .where('auto_train', '=', true)
    .where('train_file_id', 'is', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toDatasetRecord);
}

/**
 * `ready → uploading`: the upload has started (or is queued). Returns whether this call moved it, so
 * the caller knows no earlier attempt can have uploaded a file.
 */
export async function markDatasetUploading(tx: Executor, id: string): Promise<boolean> {
  const moved = await tx
    .updateTable('datasets')
    .set({ status: 'uploading', updated_at: sql`now()` })
    .where('id', '=', id)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  return moved.numUpdatedRows === 1n;
}

/**
 * Records the provider's id of one of the dataset's files, unless another attempt recorded one first:
 * returns the recorded id, which is the one to use.
 */
export async function recordUploadedFile(
  db: Executor,
  id: string,
  kind: 'train' | 'test',
  fileId: string,
): Promise<string> {
  const column = sql.ref(kind === 'train' ? 'train_file_id' : 'test_file_id');
  const { rows } = await sql<{ recorded: string }>`
    UPDATE datasets SET ${column} = COALESCE(${column}, ${fileId}), updated_at = now()
    WHERE id = ${id}
    RETURNING ${column} AS recorded`.execute(db);
  return rows[0]?.recorded ?? fileId;
}

/** `ready | uploading →` the upload's end in `set`; the dataset when this call moved it. */
function endUpload(tx: Executor, id: string, set: UpdateObject<Database, 'datasets'>) {
  return firstRecord(
    tx
      .updateTable('datasets')
      .set({ ...set, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('status', 'in', ['ready', 'uploading'])
      .returningAll(),
    toDatasetRecord,
  );
}

/** `ready | uploading → uploaded`; the dataset when this call moved it. */
export async function markDatasetUploaded(tx: Executor, id: string): Promise<DatasetRecord | undefined> {
  return endUpload(tx, id, { status: 'uploaded' });
}

/** `ready | uploading → upload_failed`, the reason added to its errors; the dataset when this call moved it. */
export async function markDatasetUploadFailed(
  tx: Executor,
  id: string,
  reason: string,
): Promise<DatasetRecord | undefined> {
  return endUpload(tx, id, {
    status: 'upload_failed',
    errors: sql`errors || ${JSON.stringify([{ field: 'upload', message: reason }])}::jsonb`,
  });
}

/**
 * Datasets the uploader owes work, oldest first: uploads started (`uploading`) and ready auto-train
 * datasets, in both cases only while no fine-tune has been created from them.
 */
export async function listDatasetsAwaitingUpload(db: Executor, limit = 10_000): Promise<DatasetRecord[]> {
  const rows = await datasets(db)
    .where((eb) =>
      eb.or([
        eb('datasets.status', '=', 'uploading'),
        eb.and([eb('datasets.status', '=', 'ready'), eb('datasets.auto_train', '=', true)]),
      ]),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('fine_tunes')
            .select('fine_tunes.id')
            .whereRef('fine_tunes.dataset_id', '=', 'datasets.id'),
        ),
      ),
    )
    .orderBy('datasets.created_at')
    .limit(limit)
    .execute();
  return rows.map(toDatasetRecord);
}
