import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatasetStorage } from '@tuneline/dataset';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { test } from '../support/fixtures.ts';
import { type S3TestServer, startS3Server } from '../support/s3.ts';
import { datasetInStatus, enqueueRequest, seedLicense } from './harness.ts';
import { superviseWorkers, type WorkerProcesses } from './workers.ts';

// The dataset builder and the uploader as their own processes, configured by the environment alone
// (STORAGE_BACKEND=s3 and the S3_* settings, as compose's minio profile or Kubernetes give them) against a
// real S3-protocol server on loopback: the dataset files go through the bucket, none to the local disk.

let sim: RunningSimulator;
let s3: S3TestServer;
let storage: DatasetStorage;
let workers: WorkerProcesses;
const localDir = mkdtempSync(join(tmpdir(), 'tuneline-unused-storage-'));

test.beforeAll(async ({ database, prefix }) => {
  s3 = await startS3Server();
  storage = await s3.storage();
  sim = await startSimulator({ port: 0, seed: 231, speed: 1_000 });
  workers = superviseWorkers({
    databaseUrl: database.url,
    prefix,
    sim,
    services: ['dataset-builder', 'uploader'],
    env: { ...s3.env, STORAGE_DIR: localDir },
  });
});

afterAll(async () => {
  await workers?.stop();
  await sim?.close();
  await s3?.close();
  rmSync(localDir, { recursive: true, force: true });
});

describe('dataset-builder and uploader processes on S3 storage', () => {
  test('build into the bucket and upload from it, configured by the environment', {
    timeout: 180_000,
  }, async ({ db, redis, prefix }) => {
    await seedLicense(db, 'lic-procs-s3', 1_000_000n);
    await enqueueRequest(
      { redis, prefix },
      requestInput({ requestId: 'procs-s3-1', licenseId: 'lic-procs-s3', autoTrain: true }),
    );
    await workers.explained(async () => {
      const dataset = await datasetInStatus(db, 'lic-procs-s3', 'uploaded', 150_000, 'the dataset uploaded');
      expect(await storage.stat(dataset.train_path as string)).toEqual({
        size: sim.admin.state().files.find((f) => f.id === dataset.train_file_id)?.bytes,
      });
      expect(dataset.train_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(readdirSync(localDir)).toEqual([]);
    });
  });
});
