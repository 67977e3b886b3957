// Retention: once training is over, the dataset's files are deleted at the provider, unless the
// license keeps them (`keepProviderFiles`); the dataset records when.
import { type Db, setLicenseKeepProviderFiles } from '@tuneline/db';
import { describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import { availableFineTune, seedLicense } from './harness.ts';
import { fileRig } from './rig.ts';

const rig = fileRig({
  simulator: { seed: 26, speed: 2_000 },
  outer: { stages: ['dataset-builder', 'billing'] },
});

async function train(db: Db, licenseId: string) {
  const input = requestInput({ requestId: `r-${licenseId}`, licenseId, autoTrain: true, testPercent: 10 });
  await rig.submit(input, `c-${licenseId}`);
  await waitFor(
    async () =>
      db
        .selectFrom('fine_tunes')
        .select('id')
        .where('license_id', '=', licenseId)
        .where('status', '=', 'succeeded')
        .executeTakeFirst(),
    30_000,
    `training of ${licenseId}`,
  );
  return db.selectFrom('datasets').selectAll().where('license_id', '=', licenseId).executeTakeFirstOrThrow();
}

describe('retention of provider files', () => {
  test('deletes the uploaded files after training', async ({ db }) => {
    await seedLicense(db, 'lic-del', 1_000_000n);
    const dataset = await train(db, 'lic-del');
    const ids = [dataset.train_file_id, dataset.test_file_id];
    expect(ids.every(Boolean)).toBe(true);
    const deleted = await waitFor(
      async () =>
        db
          .selectFrom('datasets')
          .select('provider_files_deleted_at')
          .where('id', '=', dataset.id)
          .where('provider_files_deleted_at', 'is not', null)
          .executeTakeFirst(),
      10_000,
      'the deletion record',
    );
    expect(deleted.provider_files_deleted_at).not.toBeNull();
    const left = rig.sim.admin.state().files.map((f) => f.id);
    for (const id of ids) expect(left).not.toContain(id);
  });

  test('keeps them when the license says so', async ({ db }) => {
    await seedLicense(db, 'lic-keep', 1_000_000n);
    await setLicenseKeepProviderFiles(db, 'lic-keep', true);
    const dataset = await train(db, 'lic-keep');
    // Settled (and available) comes after the poll that ended it, and so after its retention step.
    await availableFineTune(db, 'lic-keep', 10_000, 'the settlement');
    const left = rig.sim.admin.state().files.map((f) => f.id);
    expect(left).toContain(dataset.train_file_id);
    expect(left).toContain(dataset.test_file_id);
    const row = await db
      .selectFrom('datasets')
      .select('provider_files_deleted_at')
      .where('id', '=', dataset.id)
      .executeTakeFirstOrThrow();
    expect(row.provider_files_deleted_at).toBeNull();
  });
});
