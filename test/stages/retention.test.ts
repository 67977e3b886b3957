// Retention: once training is over, the dataset's files are deleted at the provider, unless the
// license keeps them (`keepProviderFiles`); the dataset records when.
import { billingStage } from '@tuneline/billing';
import { fineTuneRequestMessage } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { setLicenseKeepProviderFiles } from '@tuneline/db';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  startPipeline,
  tempStorage,
} from './harness.ts';
import { makeProvider } from './provider.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;

beforeAll(async () => {
  tdb = await createTestDatabase();
  files = tempStorage();
  sim = await startSimulator({ port: 0, seed: 26, speed: 2_000 });
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await pipeline.runner.start(datasetBuilderStage, {
    db: tdb.db,
    log: quietLog,
    storage: files.storage,
    catalogue: loadCatalogue({}),
  });
  await pipeline.runner.start(billingStage, { db: tdb.db, log: quietLog });
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  files?.cleanup();
  await tdb?.drop();
});

async function train(licenseId: string) {
  const input = requestInput({ requestId: `r-${licenseId}`, licenseId, autoTrain: true, testPercent: 10 });
  const request = fineTuneRequestMessage({ request: input, correlationId: `c-${licenseId}` });
  await pipeline.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);
  await waitFor(
    async () =>
      tdb.db
        .selectFrom('fine_tunes')
        .select('id')
        .where('license_id', '=', licenseId)
        .where('status', '=', 'succeeded')
        .executeTakeFirst(),
    30_000,
    `training of ${licenseId}`,
  );
  return tdb.db
    .selectFrom('datasets')
    .selectAll()
    .where('license_id', '=', licenseId)
    .executeTakeFirstOrThrow();
}

describe('retention of provider files', () => {
  it('deletes the uploaded files after training', async () => {
    await seedLicense(tdb.db, 'lic-del', 1_000_000n);
    const dataset = await train('lic-del');
    const ids = [dataset.train_file_id, dataset.test_file_id];
    expect(ids.every(Boolean)).toBe(true);
    const deleted = await waitFor(
      async () =>
        tdb.db
          .selectFrom('datasets')
          .select('provider_files_deleted_at')
          .where('id', '=', dataset.id)
          .where('provider_files_deleted_at', 'is not', null)
          .executeTakeFirst(),
      10_000,
      'the deletion record',
    );
    expect(deleted.provider_files_deleted_at).not.toBeNull();
    const left = sim.admin.state().files.map((f) => f.id);
    for (const id of ids) expect(left).not.toContain(id);
  });

  it('keeps them when the license says so', async () => {
    await seedLicense(tdb.db, 'lic-keep', 1_000_000n);
    await setLicenseKeepProviderFiles(tdb.db, 'lic-keep', true);
    const dataset = await train('lic-keep');
    // Settled (and available) comes after the poll that ended it, and so after its retention step.
    await waitFor(
      async () =>
        tdb.db
          .selectFrom('fine_tunes')
          .select('id')
          .where('license_id', '=', 'lic-keep')
          .where('available', '=', true)
          .executeTakeFirst(),
      10_000,
      'the settlement',
    );
    const left = sim.admin.state().files.map((f) => f.id);
    expect(left).toContain(dataset.train_file_id);
    expect(left).toContain(dataset.test_file_id);
    const row = await tdb.db
      .selectFrom('datasets')
      .select('provider_files_deleted_at')
      .where('id', '=', dataset.id)
      .executeTakeFirstOrThrow();
    expect(row.provider_files_deleted_at).toBeNull();
  });
});
