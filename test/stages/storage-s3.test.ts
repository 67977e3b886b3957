import { createHash } from 'node:crypto';
import { filesUploadMessage, fineTuneRequestMessage } from '@tuneline/contracts';
import { type DatasetStorage, loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { autoTrainFineTuneId, getFineTune } from '@tuneline/db';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { uploadFilename } from '@tuneline/uploader';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type S3TestServer, startS3Server } from '../support/s3.ts';
import {
  datasetInStatus,
  type Pipeline,
  quietLog,
  seedLicense,
  seedReadyDataset,
  startPipeline,
} from './harness.ts';
import { makeProvider } from './provider.ts';

// The dataset builder and the uploader handing files over through a bucket on a real S3-protocol
// server (s3rver on loopback) instead of a shared disk, over the real queues.

let tdb: TestDatabase;
let sim: RunningSimulator;
let s3: S3TestServer;
let storage: DatasetStorage;
let pipeline: Pipeline;
let prefix: string;
let redis: Redis;

test.beforeAll(async ({ database, prefix: ownPrefix, redis: client, stages }) => {
  tdb = database;
  prefix = ownPrefix;
  redis = client;
  s3 = await startS3Server();
  storage = await s3.storage();
  sim = await startSimulator({ port: 0, seed: 23, speed: 2_000 });
  pipeline = await startPipeline({
    db: tdb.db,
    runner: stages,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage,
    stages: ['uploader'],
  });
  await stages.start(datasetBuilderStage, {
    db: tdb.db,
    log: quietLog,
    storage,
    catalogue: loadCatalogue({}),
  });
  await seedLicense(tdb.db, 'lic-s3', 1_000_000n);
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await s3?.close();
});

/** What the provider stored for a file, read back through its own API. */
async function providerContent(fileId: string | undefined): Promise<Buffer> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey });
  const res = await client.files.content(fileId ?? 'none');
  return Buffer.from(await res.arrayBuffer());
}

const simFiles = (filename: string) =>
  [...sim.admin.state().files.values()].filter((f) => f.filename === filename);
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function readObject(key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of storage.openRead(key)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const datasetRow = (id: string) =>
  tdb.db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** Publishes the dataset's `files-upload` message and waits for BullMQ to finish with the job. */
async function uploadThroughQueue(datasetId: string) {
  const message = filesUploadMessage({ datasetId, correlationId: `corr-${datasetId}` });
  await pipeline.stage('uploader').publisher.publish(message.queue, message.jobId, message.payload);
  const queue = new Queue(message.queue, { connection: redis, prefix });
  try {
    return await waitFor(
      async () => {
        const state = await queue.getJobState(message.jobId);
        if (state !== 'failed' && state !== 'completed') return null;
        // Read after the state is final: a job read before it failed has no failedReason yet.
        const job = await queue.getJob(message.jobId);
        return job ? { job, state } : null;
      },
      20_000,
      `the files-upload job of ${datasetId}`,
    );
  } finally {
    await queue.close();
  }
}

describe('dataset files in an S3 bucket', { timeout: 60_000 }, () => {
  it('dataset builder → uploader: the files go through the bucket, hashes recorded and checked', async () => {
    const input = requestInput({ requestId: 's3-1', licenseId: 'lic-s3', autoTrain: true, testPercent: 20 });
    const request = fineTuneRequestMessage({ request: input, correlationId: 'corr-s3-1' });
    await pipeline.stage('uploader').publisher.publish(request.queue, request.jobId, request.payload);
    const dataset = await datasetInStatus(tdb.db, 'lic-s3', 'uploaded', 30_000, 'the dataset uploaded');
    expect(dataset.train_path).toMatch(/^datasets\/lic-s3\//);
    expect(storage.path(dataset.train_path as string)).toBe(`s3://${s3.bucket}/${dataset.train_path}`);
    const train = await readObject(dataset.train_path as string);
    const test = await readObject(dataset.test_path as string);
    expect(dataset.train_sha256).toBe(sha256(train));
    expect(dataset.test_sha256).toBe(sha256(test));
    expect(dataset.content_hash).toBe(sha256(`train:${sha256(train)}\ntest:${sha256(test)}`));
    // The provider got exactly the bytes in the bucket, once.
    const uploaded = simFiles(uploadFilename(dataset.id, 'train'));
    expect(uploaded).toHaveLength(1);
    expect((await providerContent(uploaded[0]?.id)).equals(train)).toBe(true);
    expect((await providerContent(simFiles(uploadFilename(dataset.id, 'test'))[0]?.id)).equals(test)).toBe(
      true,
    );
    expect((await getFineTune(tdb.db, autoTrainFineTuneId(dataset.id)))?.status).toBe('pending');
  });

  it('a dataset file missing from the bucket fails the upload once, with the reason on the rows', async () => {
    const datasetId = await seedReadyDataset(tdb.db, { licenseId: 'lic-s3', storage });
    const key = `datasets/${datasetId}/train.jsonl`;
    await storage.remove(key);
    const { job, state } = await uploadThroughQueue(datasetId);
    // Permanent: one attempt, no retries against an object that will not appear.
    expect(state).toBe('failed');
    expect(job.attemptsStarted).toBe(1);
    const reason = `dataset file s3://${s3.bucket}/${key} does not exist in storage`;
    expect(job.failedReason).toBe(reason);
    const dataset = await datasetRow(datasetId);
    expect(dataset.status).toBe('upload_failed');
    const fineTune = await getFineTune(tdb.db, autoTrainFineTuneId(datasetId));
    expect(fineTune).toMatchObject({ status: 'failed', errorCode: 'upload_failed', errorMessage: reason });
    expect(simFiles(uploadFilename(datasetId, 'train'))).toHaveLength(0);
  });

  it('a dataset file whose bytes do not match its recorded hash never reaches the provider', async () => {
    const datasetId = await seedReadyDataset(tdb.db, { licenseId: 'lic-s3', storage, examples: 400 });
    const key = `datasets/${datasetId}/train.jsonl`;
    const original = await readObject(key);
    await tdb.db
      .updateTable('datasets')
      .set({ train_sha256: sha256(original) })
      .where('id', '=', datasetId)
      .execute();
    // The object replaced by one of the same size with one byte changed (bit rot, a stray writer).
    const altered = Buffer.from(original);
    altered[altered.length - 10] = (altered[altered.length - 10] as number) ^ 1;
    await new Promise<void>((resolve, reject) => {
      const out = storage.createWriteStream(key);
      out.once('error', reject);
      out.end(altered, () => resolve());
    });
    const { job, state } = await uploadThroughQueue(datasetId);
    expect(state).toBe('failed');
    expect(job.attemptsStarted).toBe(1);
    expect(job.failedReason).toContain(
      `dataset file s3://${s3.bucket}/${key} does not match its recorded hash`,
    );
    expect((await datasetRow(datasetId)).status).toBe('upload_failed');
    expect(simFiles(uploadFilename(datasetId, 'train'))).toHaveLength(0);
  });
});
