import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FineTuneRequestProducer } from '@tuneline/contracts';
import type { DatasetStorage } from '@tuneline/dataset';
import { readServiceManifests, type Supervisor, superviseServices } from '@tuneline/devstack';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type S3TestServer, startS3Server } from '../support/s3.ts';
import { seedLicense } from './harness.ts';

// The dataset builder and the uploader as their own processes, configured by the environment alone
// (STORAGE_BACKEND=s3 and the S3_* settings, as compose's minio profile or Kubernetes give them) against a
// real S3-protocol server on loopback: the dataset files go through the bucket, none to the local disk.

const root = join(import.meta.dirname, '..', '..');
let tdb: TestDatabase;
let sim: RunningSimulator;
let s3: S3TestServer;
let storage: DatasetStorage;
let supervisor: Supervisor | undefined;
let redis: Redis;
const localDir = mkdtempSync(join(tmpdir(), 'tuneline-unused-storage-'));
let prefix: string;
const output: string[] = [];

test.beforeAll(async ({ database, prefix: ownPrefix, redis: client }) => {
  tdb = database;
  prefix = ownPrefix;
  redis = client;
  s3 = await startS3Server();
  storage = await s3.storage();
  sim = await startSimulator({ port: 0, seed: 231, speed: 1_000 });
  supervisor = superviseServices({
    root,
    manifests: readServiceManifests(root).filter((m) => ['dataset-builder', 'uploader'].includes(m.service)),
    env: {
      ...process.env,
      ...s3.env,
      STORAGE_DIR: localDir,
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      PROVIDER: 'simulator',
      SIMULATOR_URL: sim.url,
      SIMULATOR_API_KEY: sim.apiKey,
      OUTBOX_INTERVAL_MS: '100',
    },
    basePort: 0,
    restart: false,
    onOutput: (service, chunk) => output.push(`[${service}] ${chunk}`),
  });
});

afterAll(async () => {
  await supervisor?.stop(10_000);
  await sim?.close();
  await s3?.close();
  rmSync(localDir, { recursive: true, force: true });
});

describe('dataset-builder and uploader processes on S3 storage', () => {
  it('build into the bucket and upload from it, configured by the environment', {
    timeout: 180_000,
  }, async () => {
    await seedLicense(tdb.db, 'lic-procs-s3', 1_000_000n);
    const producer = new FineTuneRequestProducer({ connection: redis, prefix });
    await producer.enqueue(
      requestInput({ requestId: 'procs-s3-1', licenseId: 'lic-procs-s3', autoTrain: true }),
    );
    await producer.close();
    try {
      const dataset = await waitFor(
        async () =>
          tdb.db
            .selectFrom('datasets')
            .selectAll()
            .where('license_id', '=', 'lic-procs-s3')
            .where('status', '=', 'uploaded')
            .executeTakeFirst(),
        150_000,
        'the dataset uploaded',
      );
      expect(await storage.stat(dataset.train_path as string)).toEqual({
        size: sim.admin.state().files.find((f) => f.id === dataset.train_file_id)?.bytes,
      });
      expect(dataset.train_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(readdirSync(localDir)).toEqual([]);
    } catch (err) {
      console.error(output.join('').slice(-4_000));
      throw err;
    }
  });
});
