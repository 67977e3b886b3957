import { filesUploadMessage, fineTuneCreateJobId } from '@tuneline/contracts';
import { findBaseModel } from '@tuneline/dataset';
import { autoTrainFineTuneId, findDataset, findFineTunesByDataset, getFineTune } from '@tuneline/db';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { type UploaderDeps, uploaderStage, uploadFilename } from '@tuneline/uploader';
import { afterAll, describe, expect } from 'vitest';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { quietLog, type StorageFixture, seedLicense, seedReadyDataset, tempStorage } from './harness.ts';
import { makeProvider } from './provider.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let deps: UploaderDeps;

test.beforeAll(async ({ database }) => {
  tdb = database;
  files = tempStorage();
  sim = await startSimulator({ port: 0, seed: 51, speed: 2_000 });
  deps = {
    db: tdb.db,
    log: quietLog,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    priceOf: (model) => findBaseModel(model)?.creditsPerMillionTrainingTokens,
    processTimeoutMs: 10_000,
  };
  await seedLicense(tdb.db, 'lic-up', 1_000n);
});

afterAll(async () => {
  await sim?.close();
  files?.cleanup();
});

/** Runs the stage's handler as the worker would, once per call. */
async function runUpload(datasetId: string, overrides: Partial<UploaderDeps> = {}) {
  const message = filesUploadMessage({ datasetId, correlationId: 'c' });
  await uploaderStage.handle(
    message.payload,
    {
      queue: 'files-upload',
      jobId: message.jobId,
      attempt: 1,
      correlationId: 'c',
      log: quietLog,
    },
    { ...deps, ...overrides },
  );
}

const simFiles = (filename: string) => sim.admin.state().files.filter((f) => f.filename === filename);

describe('uploader', () => {
  it('uploads train and test files once, however often it runs, and creates one fine-tune', async () => {
    const datasetId = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-up',
      storage: files.storage,
      testExamples: 10,
    });
    await runUpload(datasetId);
    await runUpload(datasetId);
    await tdb.db.updateTable('datasets').set({ status: 'uploading' }).where('id', '=', datasetId).execute();
    await runUpload(datasetId); // as if the first run died after recording the ids
    expect(simFiles(uploadFilename(datasetId, 'train'))).toHaveLength(1);
    expect(simFiles(uploadFilename(datasetId, 'test'))).toHaveLength(1);
    const dataset = await findDataset(tdb.db, datasetId);
    expect(dataset?.status).toBe('uploaded');
    expect(dataset?.trainFileId).toBe(simFiles(uploadFilename(datasetId, 'train'))[0]?.id);
    const fineTunes = await findFineTunesByDataset(tdb.db, datasetId);
    expect(fineTunes).toHaveLength(1);
    expect(fineTunes[0]).toMatchObject({
      id: autoTrainFineTuneId(datasetId),
      status: 'pending',
      suffix: dataset?.shortHash,
      description: 'stage test',
      notifyEmails: ['ops@example.com'],
      creditsPerMillionTokens: 3000n,
    });
    const creates = await tdb.db
      .selectFrom('outbox')
      .select('job_id')
      .where('queue', '=', 'finetune-create')
      .where('job_id', '=', fineTuneCreateJobId(autoTrainFineTuneId(datasetId)))
      .execute();
    expect(creates).toHaveLength(1);
  });

  it('a repeated message for an uploaded dataset asks the provider nothing', async () => {
    const datasetId = await seedReadyDataset(tdb.db, { licenseId: 'lic-up', storage: files.storage });
    await runUpload(datasetId);
    const calls: string[] = [];
    const counting = new Proxy(deps.provider, {
      get: (target, name, receiver) => {
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function'
          ? (...args: unknown[]) => {
              calls.push(String(name));
              return value.apply(target, args);
            }
          : value;
      },
    });
    await runUpload(datasetId, { provider: counting });
    expect(calls).toEqual([]);
  });

  it('finds an upload whose response was lost by name and size instead of uploading again', async () => {
    const datasetId = await seedReadyDataset(tdb.db, { licenseId: 'lic-up', storage: files.storage });
    const key = `datasets/${datasetId}/train.jsonl`;
    // The earlier attempt marked the dataset uploading and reached the provider; its answer never came back.
    await tdb.db.updateTable('datasets').set({ status: 'uploading' }).where('id', '=', datasetId).execute();
    const lost = await deps.provider.uploadFile({
      filename: uploadFilename(datasetId, 'train'),
      content: files.storage.openRead(key),
      size: (await files.storage.stat(key)).size,
    });
    await runUpload(datasetId);
    expect(simFiles(uploadFilename(datasetId, 'train'))).toHaveLength(1);
    expect((await findDataset(tdb.db, datasetId))?.trainFileId).toBe(lost.id);
  });

  it('gives bad job options a fine-tune born failed with the reason, and queues no creation', async () => {
    const datasetId = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-up',
      storage: files.storage,
      job: { description: 'x'.repeat(121), notifyEmails: '', hyperparameters: 'auto' },
    });
    await runUpload(datasetId);
    const fineTune = await getFineTune(tdb.db, autoTrainFineTuneId(datasetId));
    expect(fineTune?.status).toBe('failed');
    expect(fineTune?.errorCode).toBe('invalid_job_options');
    expect(fineTune?.errorMessage).toContain('description');
    const creates = await tdb.db
      .selectFrom('outbox')
      .select('job_id')
      .where('job_id', '=', fineTuneCreateJobId(autoTrainFineTuneId(datasetId)))
      .execute();
    expect(creates).toHaveLength(0);
  });

  it('recovery re-enqueues ready auto-train datasets with no fine-tune, and only those', async () => {
    const waiting = await seedReadyDataset(tdb.db, { licenseId: 'lic-up', storage: files.storage });
    const manual = await seedReadyDataset(tdb.db, {
      licenseId: 'lic-up',
      storage: files.storage,
      autoTrain: false,
    });
    const messages = await uploaderStage.recover?.(deps);
    const ids = (messages ?? []).map((m) => (m.payload as { datasetId: string }).datasetId);
    expect(ids).toContain(waiting);
    expect(ids).not.toContain(manual);
    await runUpload(waiting);
    const after = await uploaderStage.recover?.(deps);
    expect((after ?? []).map((m) => (m.payload as { datasetId: string }).datasetId)).not.toContain(waiting);
  });
});
