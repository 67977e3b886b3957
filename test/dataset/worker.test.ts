import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type FineTuneRequestInput,
  filesUploadJobId,
  fineTuneRequestMessage,
  queues,
  requestContentHash,
  requestJobId,
} from '@tuneline/contracts';
import { type DatasetIssue, defaultCatalogue, LocalFileStorage, validateChatFile } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { findDatasetByRequestRow, findRequest, storeRequest } from '@tuneline/db';
import { createLogger, type RunningStage } from '@tuneline/runtime';
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { flushPrefix, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import {
  build,
  expectSameExampleWarnings,
  invoices,
  invoicesWithRepeatAndOutlier,
  request,
  requestInput,
  TEXT_ONLY_PROMPT,
} from './fixtures.ts';

describe('dataset-builder worker (BullMQ + Postgres)', { timeout: 120_000 }, () => {
  let tdb: TestDatabase;
  let prefix: string;
  let redis: Redis;
  let requests: Queue;
  let uploads: Queue;
  let running: RunningStage;
  let storageDir: string;
  let storage: LocalFileStorage;

  test.beforeAll(async ({ database, redis: client, prefix: ownPrefix, stages }) => {
    tdb = database;
    prefix = ownPrefix;
    redis = client;
    requests = new Queue('fine-tune-requests', { connection: redis, prefix });
    uploads = new Queue('files-upload', { connection: redis, prefix });
    storageDir = mkdtempSync(join(tmpdir(), 'tuneline-builder-'));
    storage = new LocalFileStorage(storageDir);
    running = await stages.start(
      datasetBuilderStage,
      { db: tdb.db, log: createLogger('test', 'silent'), storage, catalogue: defaultCatalogue },
      { concurrency: 2, timers: false },
    );
  });

  afterAll(async () => {
    await requests?.close();
    await uploads?.close();
    if (storageDir) rmSync(storageDir, { recursive: true, force: true });
  });

  const message = (input: FineTuneRequestInput, correlationId = 'corr-1') =>
    fineTuneRequestMessage({ request: input, correlationId }).payload;

  /** Adds a job and waits until it completed or failed for good. */
  async function run(input: FineTuneRequestInput, id: string): Promise<Job> {
    await requests.add('fine-tune-requests', message(input), {
      ...queues['fine-tune-requests'].jobOptions,
      jobId: id,
    });
    await waitFor(
      async () => {
        const state = await requests.getJobState(id);
        return state === 'completed' || state === 'failed';
      },
      20_000,
      `job ${id}`,
    );
    // Read the job only now: one read before it finished would lack failedReason and attemptsMade.
    const job = await requests.getJob(id);
    if (!job) throw new Error(`job ${id} vanished`);
    return job;
  }

  it('builds a dataset: row ready with counts, tokens, estimate, files; request built; no upload queued', async () => {
    const input = requestInput({ requestId: 'plain', testPercent: 10 });
    const job = await run(input, requestJobId('lic-1', 'plain'));
    expect(await job.getState()).toBe('completed');
    const stored = await findRequest(tdb.db, 'lic-1', 'plain');
    expect(stored).toMatchObject({
      status: 'built',
      contentHash: requestContentHash(request(input)),
      correlationId: 'corr-1',
    });
    const dataset = await findDatasetByRequestRow(tdb.db, stored?.id ?? '');
    expect(dataset).toMatchObject({
      status: 'ready',
      baseModel: 'gpt-4o-mini-2024-07-18',
      trainExamples: 54,
      testExamples: 6,
      epochs: 3,
      autoTrain: false,
      errors: [],
    });
    expect(dataset?.trainTokens).toBeGreaterThan(0n);
    expect(dataset?.estimatedBilledTokens).toBe(3n * (dataset?.trainTokens ?? 0n));
    expect(dataset?.shortHash).toBe(dataset?.contentHash?.slice(0, 8));
    expect(dataset?.jobOptions).toEqual({
      description: '',
      notifyEmails: '',
      hyperparameters: 'auto',
      evaluate: true,
      evaluation: { maxExamples: 200 },
    });
    // Same code path as the CLI: building the same documents and settings directly gives the same hash.
    const { result: direct, store } = await build(request(input).documents ?? [], { testPercent: 10 });
    store.cleanup();
    expect(direct.contentHash).toBe(dataset?.contentHash);
    expect(direct.trainTokens).toBe(dataset?.trainTokens);
    expect(existsSync(storage.path(dataset?.trainPath ?? 'x'))).toBe(true);
    expect(existsSync(storage.path(dataset?.testPath ?? 'x'))).toBe(true);
    const outbox = await tdb.db
      .selectFrom('outbox')
      .selectAll()
      .where('queue', '=', 'files-upload')
      .execute();
    expect(outbox).toHaveLength(0);
  });

  it('reports duplicate and outlier warnings as the CLI and the file validator do', async () => {
    const docs = invoicesWithRepeatAndOutlier();
    const input = requestInput({
      requestId: 'warnings',
      documents: docs,
      modelConfig: TEXT_ONLY_PROMPT,
    });
    expect(await (await run(input, requestJobId('lic-1', 'warnings'))).getState()).toBe('completed');
    const stored = await findRequest(tdb.db, 'lic-1', 'warnings');
    const dataset = await findDatasetByRequestRow(tdb.db, stored?.id ?? '');
    const validated = await validateChatFile(createReadStream(storage.path(dataset?.trainPath ?? 'x')), {
      model: input.baseModel,
    });
    const shared = expectSameExampleWarnings(
      dataset?.warnings as DatasetIssue[],
      validated.warnings,
      docs.map((d) => d.id),
    );
    expect(shared.map((w) => [w.code, w.documentIds])).toEqual([
      ['duplicate_examples', ['copy-of-3']],
      ['token_length_outliers', ['inv-0020']],
    ]);
  });

  it('a repeated request with the same content returns the same dataset', async () => {
    const input = requestInput({ requestId: 'repeat' });
    await run(input, requestJobId('lic-1', 'repeat'));
    const stored = await findRequest(tdb.db, 'lic-1', 'repeat');
    const first = await findDatasetByRequestRow(tdb.db, stored?.id ?? '');
    // The same request again (another job id, as after the first job was removed), keys reordered.
    const reordered = { ...input, modelConfig: { ...input.modelConfig } } as FineTuneRequestInput;
    const job = await run(reordered, `${requestJobId('lic-1', 'repeat')}-again`);
    expect(await job.getState()).toBe('completed');
    const rows = await tdb.db
      .selectFrom('datasets')
      .selectAll()
      .where('request_row_id', '=', stored?.id ?? '')
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.id).toBe(first?.id);
    expect(rows[0]?.updated_at).toEqual(first?.updatedAt);
  });

  it('the same requestId with different content fails permanently and changes nothing', async () => {
    const input = requestInput({ requestId: 'conflict' });
    await run(input, requestJobId('lic-1', 'conflict'));
    const before = await findRequest(tdb.db, 'lic-1', 'conflict');
    const dsBefore = await findDatasetByRequestRow(tdb.db, before?.id ?? '');
    const other = requestInput({ requestId: 'conflict', documents: invoices(60, 100) });
    const job = await run(other, `${requestJobId('lic-1', 'conflict')}-other`);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/requestId "conflict".*different content/);
    expect(job.attemptsMade).toBe(1); // permanent: no retries
    expect(await findRequest(tdb.db, 'lic-1', 'conflict')).toEqual(before);
    expect(await findDatasetByRequestRow(tdb.db, before?.id ?? '')).toEqual(dsBefore);
  });

  it('autoTrain writes the files-upload message with the dataset row; the relay queues it', async () => {
    const input = requestInput({ requestId: 'auto', autoTrain: true });
    await run(input, requestJobId('lic-1', 'auto'));
    const stored = await findRequest(tdb.db, 'lic-1', 'auto');
    const dataset = await findDatasetByRequestRow(tdb.db, stored?.id ?? '');
    expect(dataset).toMatchObject({ status: 'ready', autoTrain: true });
    const id = filesUploadJobId(dataset?.id ?? '');
    const outbox = await tdb.db.selectFrom('outbox').selectAll().where('job_id', '=', id).execute();
    expect(outbox).toHaveLength(1);
    expect(outbox[0]?.payload).toEqual({ schemaVersion: 1, correlationId: 'corr-1', datasetId: dataset?.id });
    await running.relayOutbox();
    const queued = await waitFor(() => uploads.getJob(id), 5_000, 'files-upload job');
    expect(queued.data).toEqual({ schemaVersion: 1, correlationId: 'corr-1', datasetId: dataset?.id });
  });

  it('invalid input: dataset invalid with errors, request rejected, job failed permanently, no files', async () => {
    const docs = invoices(12);
    docs[4] = { ...docs[4], id: 'inv-0004', text: '', fields: { total: '1' } };
    const input = requestInput({ requestId: 'bad', documents: docs, autoTrain: true });
    const job = await run(input, requestJobId('lic-1', 'bad'));
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/document "inv-0004", field "text": text is empty/);
    expect(job.attemptsMade).toBe(1);
    const stored = await findRequest(tdb.db, 'lic-1', 'bad');
    expect(stored).toMatchObject({ status: 'rejected', error: expect.stringContaining('inv-0004') });
    const dataset = await findDatasetByRequestRow(tdb.db, stored?.id ?? '');
    expect(dataset).toMatchObject({ status: 'invalid', trainPath: null, contentHash: null });
    expect(dataset?.errors).toContainEqual(
      expect.objectContaining({ code: 'empty_text', documentId: 'inv-0004' }),
    );
    const outbox = await tdb.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', filesUploadJobId(dataset?.id ?? ''))
      .execute();
    expect(outbox).toHaveLength(0);
  });

  it('a request still queued under the old job id when a deployment upgrades is built once', async () => {
    // Before issue 16.6 the job id was `fine-tune-requests-<license>-<request>`. A worker took the job,
    // stored the request and died; the job waits again under that id, and the new recovery sweep
    // queues the stored request under the new id: two jobs for one request.
    const waiting = request({ requestId: 'upgrade-1', autoTrain: true });
    const { request: stored } = await storeRequest(tdb.db, {
      licenseId: waiting.licenseId,
      requestId: waiting.requestId,
      contentHash: requestContentHash(waiting),
      correlationId: 'corr-upgrade',
      payload: waiting,
    });
    const oldJobId = `fine-tune-requests-${waiting.licenseId}-${waiting.requestId}`;
    expect(oldJobId).not.toBe(requestJobId(waiting.licenseId, waiting.requestId));
    await requests.add('fine-tune-requests', message(waiting, 'corr-upgrade'), {
      ...queues['fine-tune-requests'].jobOptions,
      jobId: oldJobId,
    });
    await running.recover();
    const ids = [oldJobId, requestJobId(waiting.licenseId, waiting.requestId)];
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map((id) => requests.getJobState(id)));
        if (states.includes('failed')) throw new Error(`a job failed: ${states.join(', ')}`);
        return states.every((state) => state === 'completed');
      },
      20_000,
      'both jobs',
    );
    const datasets = await tdb.db
      .selectFrom('datasets')
      .selectAll()
      .where('request_row_id', '=', stored.id)
      .execute();
    expect(datasets).toHaveLength(1);
    expect(await findRequest(tdb.db, waiting.licenseId, waiting.requestId)).toMatchObject({
      status: 'built',
    });
    const uploadRows = await tdb.db
      .selectFrom('outbox')
      .select('job_id')
      .where('job_id', '=', filesUploadJobId(datasets[0]?.id ?? ''))
      .execute();
    expect(uploadRows).toHaveLength(1);
  });

  it('after Redis lost its data, recovery rebuilds stored requests and re-queues lost uploads', async () => {
    // A request stored in Postgres whose message was lost before it was built.
    const waiting = request({ requestId: 'lost', autoTrain: true });
    await storeRequest(tdb.db, {
      licenseId: waiting.licenseId,
      requestId: waiting.requestId,
      contentHash: requestContentHash(waiting),
      correlationId: 'corr-lost',
      payload: waiting,
    });
    const auto = await findDatasetByRequestRow(
      tdb.db,
      (await findRequest(tdb.db, 'lic-1', 'auto'))?.id ?? '',
    );
    expect(await flushPrefix(redis, prefix)).toBeGreaterThan(0);

    const count = await running.recover();
    expect(count).toBeGreaterThanOrEqual(2);
    const rebuilt = await waitFor(
      async () => {
        const row = await findRequest(tdb.db, 'lic-1', 'lost');
        return row?.status === 'built' ? row : undefined;
      },
      20_000,
      'recovered request built',
    );
    const dataset = await findDatasetByRequestRow(tdb.db, rebuilt.id);
    expect(dataset).toMatchObject({ status: 'ready', correlationId: 'corr-lost', trainExamples: 60 });
    // The earlier auto-train dataset's lost files-upload message is back on its queue.
    const upload = await waitFor(() => uploads.getJob(filesUploadJobId(auto?.id ?? '')), 5_000, 'upload job');
    expect(upload.data).toMatchObject({ datasetId: auto?.id });
    // Nothing built twice.
    const all = await tdb.db.selectFrom('datasets').select('request_row_id').execute();
    expect(new Set(all.map((r) => r.request_row_id)).size).toBe(all.length);
  });
});
