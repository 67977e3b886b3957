import type { Readable } from 'node:stream';
import { formatZodError, jobOptionsSchema, parseEmailList } from '@tuneline/contracts';
import {
  autoTrainFineTuneId,
  createFineTuneFromDataset,
  createJobMessage,
  type Dataset,
  type Db,
  inTransaction,
  type OutboxMessage,
  queueOutcomeNotifications,
  uploadFilesMessage,
  writeOutbox,
} from '@tuneline/db';
import { defineStage, PermanentError, type StageDeps } from '@tuneline/runtime';
import { sql } from 'kysely';

/** What the uploader needs from the provider profile. */
export interface UploaderProvider {
  uploadFile(input: { filename: string; content: Readable; size: number }): Promise<{ id: string }>;
  findFileByNameAndSize(filename: string, size: number): Promise<{ id: string } | null | undefined>;
  waitUntilProcessed(fileId: string, opts: { timeoutMs: number }): Promise<unknown>;
}

/** Where dataset files are read from (`LocalFileStorage` of @tuneline/dataset). */
export interface UploaderStorage {
  openRead(key: string): Readable;
  stat(key: string): Promise<{ size: number }>;
}

export interface UploaderDeps extends StageDeps {
  provider: UploaderProvider;
  storage: UploaderStorage;
  /** Credits per 1M training tokens of a base model, from the catalogue; undefined when unknown. */
  priceOf(baseModel: string): bigint | undefined;
  /** How long to wait for the provider to process one file before the job retries. */
  processTimeoutMs: number;
}

type FileKind = 'train' | 'test';

/** Deterministic names: a lost upload response is found again by name and size. */
export function uploadFilename(datasetId: string, kind: FileKind): string {
  return `${datasetId}-${kind}.jsonl`;
}

/** Stage 2: consumes `files-upload`. */
export const uploaderStage = defineStage<'files-upload', UploaderDeps>({
  queue: 'files-upload',
  async handle(message, ctx, deps) {
    const { db } = deps;
    const dataset = await getDataset(db, message.datasetId);
    if (!dataset) throw new PermanentError(`dataset ${message.datasetId} does not exist`);
    if (dataset.status === 'building') throw new Error(`dataset ${dataset.id} is still building`);
    if (dataset.status === 'invalid' || dataset.status === 'upload_failed') {
      ctx.log.info({ datasetId: dataset.id, status: dataset.status }, 'dataset will not be uploaded');
      return;
    }
    // A repeated message (a recovery sweep racing the job that finished it): its files, and with
    // auto-train its fine-tune, were committed with that status.
    if (dataset.status === 'uploaded') return;
    // True when this attempt moved the dataset to `uploading`: no earlier attempt can have uploaded a
    // file, so there is no lost upload to look for (a list call saved per file).
    let firstAttempt = false;
    if (dataset.status === 'ready') {
      const moved = await db
        .updateTable('datasets')
        .set({ status: 'uploading', updated_at: sql`now()` })
        .where('id', '=', dataset.id)
        .where('status', '=', 'ready')
        .executeTakeFirst();
      firstAttempt = moved.numUpdatedRows === 1n;
    }

    let trainFileId = dataset.train_file_id;
    let testFileId = dataset.test_file_id;
    try {
      if (!dataset.train_path) throw new PermanentError(`dataset ${dataset.id} has no training file`);
      trainFileId ??= await uploadOnce(deps, dataset, 'train', dataset.train_path, firstAttempt);
      if (dataset.test_path)
        testFileId ??= await uploadOnce(deps, dataset, 'test', dataset.test_path, firstAttempt);
      // Bounded: a timeout throws and the job retries later; the recorded ids are never uploaded again.
      await deps.provider.waitUntilProcessed(trainFileId, { timeoutMs: deps.processTimeoutMs });
      if (testFileId) {
        await deps.provider.waitUntilProcessed(testFileId, { timeoutMs: deps.processTimeoutMs });
      }
    } catch (err) {
      if (err instanceof PermanentError) await markUploadFailed(deps, dataset.id, err.message);
      throw err;
    }

    await inTransaction(db, async (tx) => {
      const updated = await tx
        .updateTable('datasets')
        .set({ status: 'uploaded', updated_at: sql`now()` })
        .where('id', '=', dataset.id)
        .where('status', 'in', ['ready', 'uploading'])
        .returningAll()
        .executeTakeFirst();
      if (!updated?.auto_train) return;
      const next = await createAutoTrainFineTune(tx, updated, deps);
      if (next) await writeOutbox(tx, next);
    });
    ctx.log.info({ datasetId: dataset.id, trainFileId, testFileId }, 'dataset files uploaded');
  },

  async recover({ db }) {
    const rows = await db
      .selectFrom('datasets')
      .select(['datasets.id', 'datasets.correlation_id'])
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
      .limit(10_000)
      .execute();
    return rows.map(uploadFilesMessage);
  },
});

async function getDataset(db: Db, id: string): Promise<Dataset | undefined> {
  return db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Uploads one file unless the provider already has it (a previous attempt whose response was lost;
 * only possible when this is not the first attempt), and records its id at once, so nothing after
 * this point can cause a second upload.
 */
async function uploadOnce(
  deps: UploaderDeps,
  dataset: Dataset,
  kind: FileKind,
  key: string,
  firstAttempt: boolean,
): Promise<string> {
  const filename = uploadFilename(dataset.id, kind);
  const { size } = await deps.storage.stat(key);
  const found = firstAttempt ? null : await deps.provider.findFileByNameAndSize(filename, size);
  const fileId =
    found?.id ?? (await deps.provider.uploadFile({ filename, content: deps.storage.openRead(key), size })).id;
  // If another worker recorded a different id first, keep (and return) the recorded one.
  const column = sql.ref(kind === 'train' ? 'train_file_id' : 'test_file_id');
  const { rows } = await sql<{ recorded: string }>`
    UPDATE datasets SET ${column} = COALESCE(${column}, ${fileId}), updated_at = now()
    WHERE id = ${dataset.id}
    RETURNING ${column} AS recorded`.execute(deps.db);
  return rows[0]?.recorded ?? fileId;
}

/**
 * The provider refused a file for good. The dataset records why; with auto-train, its fine-tune is born
 * `failed` with the provider's message (and notified), so the reason reaches the people waiting on it.
 */
async function markUploadFailed(deps: UploaderDeps, datasetId: string, reason: string): Promise<void> {
  await inTransaction(deps.db, async (tx) => {
    const failed = await tx
      .updateTable('datasets')
      .set({
        status: 'upload_failed',
        errors: sql`errors || ${JSON.stringify([{ field: 'upload', message: reason }])}::jsonb`,
        updated_at: sql`now()`,
      })
      .where('id', '=', datasetId)
      .where('status', 'in', ['ready', 'uploading'])
      .returningAll()
      .executeTakeFirst();
    if (failed?.auto_train) {
      await createAutoTrainFineTune(tx, failed, deps, { code: 'upload_failed', message: reason });
    }
  });
}

/**
 * The dataset's auto-train fine-tune (deterministic id, so one per dataset) and its `finetune-create`
 * message. Job options that do not parse give a fine-tune born `failed`, so the reason is on a row users see.
 */
async function createAutoTrainFineTune(
  tx: Parameters<typeof writeOutbox>[0],
  dataset: Dataset,
  deps: UploaderDeps,
  uploadFailure?: { code: string; message: string },
): Promise<OutboxMessage<'finetune-create'> | null> {
  const id = autoTrainFineTuneId(dataset.id);
  const price = deps.priceOf(dataset.base_model);
  const options = jobOptionsSchema.safeParse(dataset.job_options ?? {});
  const emails = options.success ? parseEmailList(options.data.notifyEmails) : null;
  let failure: { code: string; message: string } | undefined = uploadFailure;
  if (failure) {
    // The upload's own failure comes first.
  } else if (price === undefined)
    failure = { code: 'unknown_base_model', message: `unknown base model "${dataset.base_model}"` };
  else if (!options.success)
    failure = { code: 'invalid_job_options', message: formatZodError(options.error) };
  else if (emails && !emails.ok)
    failure = { code: 'invalid_job_options', message: `notifyEmails: ${emails.message}` };

  const valid = options.success && emails?.ok ? options.data : null;
  const { fineTune, created } = await createFineTuneFromDataset(tx, dataset, {
    id,
    description: valid?.description ?? '',
    notifyEmails: emails?.ok ? emails.emails : [],
    ...(valid?.suffix ? { suffix: valid.suffix } : {}),
    hyperparameters: valid?.hyperparameters ?? 'auto',
    creditsPerMillionTokens: price ?? 0n,
    ...(failure ? { failure } : {}),
  });
  if (!created || failure) {
    // Nothing was reserved for a fine-tune born failed: nothing to settle either.
    if (created) {
      await tx.updateTable('fine_tunes').set({ settled_at: sql`now()` }).where('id', '=', id).execute();
      await queueOutcomeNotifications(tx, fineTune);
    }
    return null;
  }
  return createJobMessage({ id, correlation_id: dataset.correlation_id });
}
