import type { Readable } from 'node:stream';
import { filesUploadMessage } from '@tuneline/contracts';
import { isStorageError, type ReadOptions, type StorageError } from '@tuneline/dataset';
import {
  autoTrainFineTuneId,
  checkJobOptions,
  createFineTune,
  type DatasetRecord,
  type Executor,
  findDataset,
  inTransaction,
  listDatasetsAwaitingUpload,
  markDatasetUploaded,
  markDatasetUploadFailed,
  recordUploadedFile,
  startUpload,
} from '@tuneline/db';
import type { ProviderErrorKind } from '@tuneline/provider';
import { defineStage, PermanentError, type StageDeps, stageFailure } from '@tuneline/runtime';

/** What the uploader needs from the provider profile. */
export interface UploaderProvider {
  uploadFile(input: {
    filename: string;
    content: Readable;
    size: number;
    signal?: AbortSignal;
  }): Promise<{ id: string }>;
  findFileByNameAndSize(filename: string, size: number): Promise<{ id: string } | null | undefined>;
  waitUntilProcessed(fileId: string, opts: { timeoutMs: number }): Promise<unknown>;
}

/** Where dataset files are read from (a `DatasetStorage` of @tuneline/dataset: a directory or a bucket). */
export interface UploaderStorage {
  /** A missing object or a hash mismatch fails the stream with a StorageError. */
  openRead(key: string, opts?: ReadOptions): Readable;
  stat(key: string): Promise<{ size: number }>;
}

export interface UploaderDeps extends StageDeps {
  provider: UploaderProvider;
  /** Several providers: the profile for a dataset's provider (null: the default). */
  providers?: { for(provider: string | null): UploaderProvider };
  storage: UploaderStorage;
  /** Credits per 1M training tokens of a base model at a provider, from the catalogue; undefined when unknown. */
  priceOf(baseModel: string, provider?: string | null): bigint | undefined;
  /** How long to wait for the provider to process one file before the job retries. */
  processTimeoutMs: number;
}

type FileKind = 'train' | 'test';

/**
 * Failures that end an upload for good: the dataset is marked `upload_failed` (and its auto-train
 * fine-tune born failed) with the message. A 401/403 counts, so a wrong key shows on the dataset rather
 * than retrying unseen; so do a dataset file missing from storage and one whose bytes do not match the
 * hash recorded when it was written (retrying would read the same object again).
 */
const PERMANENT: readonly (ProviderErrorKind | StorageError['kind'])[] = [
  'auth',
  'not_found',
  'rejected',
  'storage_missing',
  'storage_corrupt',
];

/** Deterministic names: a lost upload response is found again by name and size. */
export function uploadFilename(datasetId: string, kind: FileKind): string {
  return `${datasetId}-${kind}.jsonl`;
}

/** Stage 2: consumes `files-upload`. */
export const uploaderStage = defineStage<'files-upload', UploaderDeps>({
  queue: 'files-upload',
  async handle(message, ctx, stageDeps) {
    const { db } = stageDeps;
    const dataset = await findDataset(db, message.datasetId);
    if (!dataset) throw new PermanentError(`dataset ${message.datasetId} does not exist`);
    if (dataset.status === 'building') throw new Error(`dataset ${dataset.id} is still building`);
    if (dataset.status === 'invalid' || dataset.status === 'upload_failed') {
      ctx.log.info({ datasetId: dataset.id, status: dataset.status }, 'dataset will not be uploaded');
      return;
    }
    // A repeated message (a recovery sweep racing the job that finished it): its files, and with
    // auto-train its fine-tune, were committed with that status.
    if (dataset.status === 'uploaded') return;
    let deps = stageDeps;
    try {
      deps = { ...stageDeps, provider: stageDeps.providers?.for(dataset.provider) ?? stageDeps.provider };
    } catch (err) {
      // A provider this deployment cannot reach: the dataset says which and how to configure it.
      const reason = err instanceof Error ? err.message : String(err);
      await markUploadFailed(stageDeps, dataset.id, reason);
      throw new PermanentError(reason);
    }
    // True when this attempt moved the dataset to `uploading`: no earlier attempt can have uploaded a
    // file, so there is no lost upload to look for (a list call saved per file).
    const firstAttempt = dataset.status === 'ready' && (await startUpload(db, dataset.id));

    let trainFileId = dataset.trainFileId;
    let testFileId = dataset.testFileId;
    try {
      if (!dataset.trainPath) throw new PermanentError(`dataset ${dataset.id} has no training file`);
      trainFileId ??= await uploadOnce(deps, dataset, 'train', dataset.trainPath, firstAttempt);
      if (dataset.testPath)
        testFileId ??= await uploadOnce(deps, dataset, 'test', dataset.testPath, firstAttempt);
      // Bounded: a timeout throws and the job retries later; the recorded ids are never uploaded again.
      await deps.provider.waitUntilProcessed(trainFileId, { timeoutMs: deps.processTimeoutMs });
      if (testFileId) {
        await deps.provider.waitUntilProcessed(testFileId, { timeoutMs: deps.processTimeoutMs });
      }
    } catch (err) {
      const failure = stageFailure(err, PERMANENT);
      if (failure instanceof PermanentError) await markUploadFailed(deps, dataset.id, failure.message);
      throw failure;
    }

    await inTransaction(db, async (tx) => {
      const uploaded = await markDatasetUploaded(tx, dataset.id);
      if (uploaded?.autoTrain) await createAutoTrainFineTune(tx, uploaded, deps);
    });
    ctx.log.info({ datasetId: dataset.id, trainFileId, testFileId }, 'dataset files uploaded');
  },

  async recover({ db }) {
    const rows = await listDatasetsAwaitingUpload(db);
    return rows.map((d) => filesUploadMessage({ datasetId: d.id, correlationId: d.correlationId }));
  },
});

/**
 * Uploads one file unless the provider already has it (a previous attempt whose response was lost;
 * only possible when this is not the first attempt), and records its id at once, so nothing after
 * this point can cause a second upload.
 */
async function uploadOnce(
  deps: UploaderDeps,
  dataset: DatasetRecord,
  kind: FileKind,
  key: string,
  firstAttempt: boolean,
): Promise<string> {
  const filename = uploadFilename(dataset.id, kind);
  const { size } = await deps.storage.stat(key);
  const found = firstAttempt ? null : await deps.provider.findFileByNameAndSize(filename, size);
  const fileId =
    found?.id ??
    (await uploadFromStorage(
      deps,
      key,
      kind === 'train' ? dataset.trainSha256 : dataset.testSha256,
      filename,
      size,
    ));
  // If another worker recorded a different id first, keep (and return) the recorded one.
  return recordUploadedFile(deps.db, dataset.id, kind, fileId);
}

/**
 * Streams the file from storage to the provider (never whole in memory), its bytes checked against the
 * recorded hash. A read failure (missing object, hash mismatch) is what the upload reports, whatever
 * the HTTP client made of the body stream that broke under it.
 */
async function uploadFromStorage(
  deps: UploaderDeps,
  key: string,
  sha256: string | null,
  filename: string,
  size: number,
): Promise<string> {
  const content = deps.storage.openRead(key, { sha256 });
  // A read that fails midway aborts the request: the provider never gets a complete file, and the
  // connection does not stay open waiting for the rest of the body.
  const abort = new AbortController();
  let readFailure: unknown;
  content.on('error', (err) => {
    readFailure ??= err;
    abort.abort(err);
  });
  try {
    return (await deps.provider.uploadFile({ filename, content, size, signal: abort.signal })).id;
  } catch (err) {
    throw isStorageError(readFailure) ? readFailure : err;
  } finally {
    content.destroy();
  }
}

/**
 * The provider refused a file for good. The dataset records why; with auto-train, its fine-tune is born
 * `failed` with the provider's message (and notified), so the reason reaches the people waiting on it.
 */
async function markUploadFailed(deps: UploaderDeps, datasetId: string, reason: string): Promise<void> {
  await inTransaction(deps.db, async (tx) => {
    const failed = await markDatasetUploadFailed(tx, datasetId, reason);
    if (failed?.autoTrain) {
      await createAutoTrainFineTune(tx, failed, deps, { code: 'upload_failed', message: reason });
    }
  });
}

/**
 * The dataset's auto-train fine-tune (deterministic id, so one per dataset), queued for the trainer.
 * An upload that failed, an unknown base model or job options that do not parse give a fine-tune born
 * `failed` instead, so the reason is on a row users see (and in their e-mail).
 */
async function createAutoTrainFineTune(
  tx: Executor,
  dataset: DatasetRecord,
  deps: UploaderDeps,
  uploadFailure?: { code: string; message: string },
): Promise<void> {
  const price = deps.priceOf(dataset.baseModel, dataset.provider);
  const checked = checkJobOptions(dataset.jobOptions);
  let failure = uploadFailure; // the upload's own failure comes first
  if (!failure && price === undefined)
    failure = { code: 'unknown_base_model', message: `unknown base model "${dataset.baseModel}"` };
  else if (!failure && !checked.ok) failure = { code: 'invalid_job_options', message: checked.message };
  await createFineTune(tx, dataset, {
    id: autoTrainFineTuneId(dataset.id),
    options: checked.ok ? checked.options : { description: '', notifyEmails: [], hyperparameters: 'auto' },
    creditsPerMillionTokens: price ?? 0n,
    ...(failure ? { failure } : {}),
  });
}
