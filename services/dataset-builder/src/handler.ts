import { randomUUID } from 'node:crypto';
import {
  type Clock,
  type DocumentStoreSource,
  type FineTuneRequest,
  filesUploadMessage,
  fineTuneRequestMessage,
  type MessageOf,
  requestContentHash,
} from '@tuneline/contracts';
import {
  buildDataset,
  type Catalogue,
  chooseTrainingProvider,
  type DatasetBuild,
  type DatasetStorage,
  type DocumentSource,
  describeIssue,
  findBaseModel,
} from '@tuneline/dataset';
import {
  type DatasetRecord,
  findDatasetByRequestRow,
  findLicense,
  finishRequest,
  insertDataset,
  inTransaction,
  listDatasetsAwaitingAutoUpload,
  listWaitingRequests,
  lockRequest,
  type OutboxMessage,
  readStoredDocuments,
  type StoredRequest,
  storeRequest,
  writeOutbox,
} from '@tuneline/db';
import { defineStage, type JobContext, PermanentError, type StageDeps } from '@tuneline/runtime';

export interface DatasetBuilderDeps extends StageDeps {
  storage: DatasetStorage;
  catalogue: Catalogue;
  /** The one clock (issue 21.5); the process clock (`TUNELINE_CLOCK_OFFSET_MS`) when absent. */
  clock?: Clock;
}

/** Storage keys of one build attempt: attempts never share files, so two racing runs cannot mix lines. */
export function datasetKeys(request: StoredRequest, attempt: string = randomUUID().slice(0, 8)) {
  const dir = `datasets/${request.licenseId}/${request.id}/${attempt}`;
  return { trainKey: `${dir}/train.jsonl`, testKey: `${dir}/test.jsonl` };
}

/** The one-line reason a rejected request carries. */
export function rejectionReason(build: Pick<DatasetBuild, 'errors'>): string {
  const shown = build.errors.slice(0, 5).map(describeIssue);
  const more = build.errors.length > 5 ? `; and ${build.errors.length - 5} more` : '';
  return `invalid dataset: ${shown.join('; ')}${more}`;
}

/** The `files-upload` message of a dataset (the uploader's queue). */
const uploadMessage = (dataset: Pick<DatasetRecord, 'id' | 'correlationId'>) =>
  filesUploadMessage({ datasetId: dataset.id, correlationId: dataset.correlationId });

/** A `fine-tune-requests` message re-driving a stored request from its Postgres row. */
const storedRequestMessage = (row: StoredRequest) =>
  fineTuneRequestMessage({ request: row.payload as FineTuneRequest, correlationId: row.correlationId });

/**
 * The request's documents: inline, or the license's stored documents of one configuration, read page by
 * page from Postgres (each of the build's two passes reads the store afresh).
 */
function documentSourceOf(deps: DatasetBuilderDeps, request: FineTuneRequest): DocumentSource {
  const store = request.documentStore;
  if (!store) return () => request.documents ?? [];
  return () =>
    readStoredDocuments(deps.db, { licenseId: request.licenseId, configuration: store.configuration });
}

/** One seed per (license, configuration): every version of its datasets splits the same way. */
export const storeSplitSeed = (licenseId: string, store: DocumentStoreSource): string =>
  `document-store/${licenseId}/${store.configuration}`;

export type HandleOutcome =
  | { outcome: 'built'; dataset: DatasetRecord }
  | { outcome: 'already_built'; dataset: DatasetRecord | undefined };

/**
 * Stores the request once per (licenseId, requestId), builds its dataset, and commits the dataset row,
 * the request's new status and (autoTrain) the `files-upload` message in one transaction. Invalid input
 * and a reused requestId with other content fail permanently; anything else is retried.
 */
export async function handleFineTuneRequest(
  message: MessageOf<'fine-tune-requests'>,
  ctx: Pick<JobContext, 'log'>,
  deps: DatasetBuilderDeps,
): Promise<HandleOutcome> {
  const request = message.request;
  const contentHash = requestContentHash(request);
  const { request: stored } = await storeRequest(deps.db, {
    licenseId: request.licenseId,
    requestId: request.requestId,
    contentHash,
    correlationId: message.correlationId,
    payload: request,
  });
  if (stored.contentHash !== contentHash) {
    throw new PermanentError(
      `requestId "${request.requestId}" of license "${request.licenseId}" was already used for a request with different content; the stored request is kept unchanged`,
    );
  }
  if (stored.status === 'rejected') {
    throw new PermanentError(stored.error ?? 'the request was rejected');
  }
  if (stored.status === 'built') {
    ctx.log.info({ requestRowId: stored.id }, 'request already built: same dataset');
    return { outcome: 'already_built', dataset: await findDatasetByRequestRow(deps.db, stored.id) };
  }

  // The provider it trains at: the request's, else the license's, else the model's (catalogue).
  const model = findBaseModel(request.baseModel, deps.catalogue);
  const license = await findLicense(deps.db, request.licenseId);
  const choice = model
    ? chooseTrainingProvider(model, { request: request.provider, license: license?.provider })
    : { provider: null };
  if ('error' in choice) throw new PermanentError(choice.error);

  const keys = datasetKeys(stored);
  const build = await buildDataset(request, documentSourceOf(deps, request), {
    storage: deps.storage,
    ...keys,
    catalogue: deps.catalogue,
    ...(deps.clock ? { clock: deps.clock } : {}),
    // Past trainingClosesAt at the provider it trains at (not another provider's dates): base_model_retired.
    provider: choice.provider,
    ...(request.documentStore
      ? { stableSplitSeed: storeSplitSeed(request.licenseId, request.documentStore) }
      : {}),
  });
  const reason = build.status === 'invalid' ? rejectionReason(build) : null;

  const committed = await inTransaction(deps.db, async (tx) => {
    const locked = await lockRequest(tx, stored.id);
    if (locked?.status !== 'received') return undefined; // another run finished it first
    const { dataset } = await insertDataset(tx, {
      requestRowId: stored.id,
      licenseId: stored.licenseId,
      correlationId: stored.correlationId,
      baseModel: request.baseModel,
      provider: choice.provider,
      status: build.status,
      dump: request.dump,
      testPercent: request.testPercent,
      contentHash: build.contentHash,
      shortHash: build.shortHash,
      trainPath: build.trainKey,
      testPath: build.testKey,
      trainSha256: build.trainSha256,
      testSha256: build.testSha256,
      trainExamples: build.trainExamples,
      testExamples: build.testExamples,
      trainTokens: build.trainTokens,
      testTokens: build.testTokens,
      epochs: build.epochs,
      estimatedBilledTokens: build.estimatedBilledTokens,
      estimatedCredits: build.estimatedCredits,
      warnings: build.warnings,
      errors: build.errors,
      autoTrain: request.autoTrain,
      jobOptions: request.job,
    });
    await finishRequest(tx, stored.id, build.status === 'ready' ? 'built' : 'rejected', reason);
    if (build.status === 'ready' && request.autoTrain) await writeOutbox(tx, uploadMessage(dataset));
    return dataset;
  });

  if (!committed) {
    // Lost the race: our files are not referenced by any row.
    await Promise.all([deps.storage.remove(keys.trainKey), deps.storage.remove(keys.testKey)]);
    const current = await findDatasetByRequestRow(deps.db, stored.id);
    if (current?.status === 'invalid') throw new PermanentError(reason ?? 'the request was rejected');
    return { outcome: 'already_built', dataset: current };
  }
  if (reason) throw new PermanentError(reason);
  ctx.log.info(
    {
      datasetId: committed.id,
      trainExamples: committed.trainExamples,
      testExamples: committed.testExamples,
      estimatedCredits: committed.estimatedCredits?.toString(),
    },
    'dataset built',
  );
  return { outcome: 'built', dataset: committed };
}

/**
 * Work waiting on this stage in Postgres: requests stored but not built (re-driven from the stored
 * payload), and ready auto-train datasets whose `files-upload` message may have been lost.
 */
export async function recoverDatasetBuilder(deps: DatasetBuilderDeps): Promise<OutboxMessage[]> {
  const waiting = await listWaitingRequests(deps.db, 50);
  const uploads = await listDatasetsAwaitingAutoUpload(deps.db);
  return [...waiting.map(storedRequestMessage), ...uploads.map(uploadMessage)];
}

/** Stage: consumes `fine-tune-requests`. */
export const datasetBuilderStage = defineStage<'fine-tune-requests', DatasetBuilderDeps>({
  queue: 'fine-tune-requests',
  async handle(message, ctx, deps) {
    await handleFineTuneRequest(message, ctx, deps);
  },
  recover: recoverDatasetBuilder,
});
