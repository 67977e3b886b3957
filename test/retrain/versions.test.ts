import { handleFineTuneRequest } from '@tuneline/dataset-builder';
import { checkTrainingProfile } from '@tuneline/dataset-builder/retrain';
import { deleteDocument, findDatasetByRequestRow, findRequest, listProfileVersions } from '@tuneline/db';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import {
  builderDeps,
  drainOutbox,
  idsInFile,
  ingest,
  invoice,
  requestMessages,
  saveProfile,
} from './support.ts';

let t: TestDatabase;
let env: ReturnType<typeof builderDeps>;

test.beforeAll(async ({ database }) => {
  t = database;
  env = builderDeps(t.db);
  await makeLicense(t.db, 'lic-versions');
});

afterAll(async () => {
  env?.cleanup();
});

/** Runs a check and builds the request it queued, as the dataset-builder would. */
async function trainVersion(profileId: string) {
  const check = await checkTrainingProfile(env.deps, profileId, 'policy');
  expect(check?.decision.action, check?.decision.reason).toBe('train');
  const [message] = requestMessages(await drainOutbox(t.db));
  if (!message) throw new Error('the check queued no fine-tune request');
  expect(message.request.documents).toBeUndefined();
  const outcome = await handleFineTuneRequest(message, { log: env.deps.log }, env.deps);
  if (outcome.outcome !== 'built') throw new Error(`not built: ${outcome.outcome}`);
  const { dataset } = outcome;
  expect(dataset.status).toBe('ready');
  return {
    version: check?.version,
    train: idsInFile(env.storageDir, dataset.trainPath),
    test: idsInFile(env.storageDir, dataset.testPath),
    requestId: message.request.requestId,
  };
}

describe('versioned datasets from the document store', () => {
  it('keeps every earlier testing document in testing, and drops deleted documents from both files', async () => {
    const profile = await saveProfile(t.db, 'lic-versions');
    const first = Array.from({ length: 60 }, (_, i) => invoice(`d${String(i).padStart(4, '0')}`, i + 1));
    await ingest(t.db, 'lic-versions', first);
    const v1 = await trainVersion(profile.id);
    expect(v1.version).toBe(1);
    expect(v1.requestId).toBe('profile-invoices-v1');
    expect(new Set([...v1.train, ...v1.test])).toEqual(new Set(first.map((d) => d.id)));
    expect(v1.test.length).toBeGreaterThan(0);

    // 200 more documents, one changed, one testing and one training document deleted.
    const more = Array.from({ length: 200 }, (_, i) =>
      invoice(`d${String(60 + i).padStart(4, '0')}`, i + 100),
    );
    await ingest(t.db, 'lic-versions', [...more, invoice(first[0]?.id ?? '', 999)]);
    const deletedTest = v1.test.find((id) => id !== first[0]?.id) as string;
    const deletedTrain = v1.train.find((id) => id !== first[0]?.id) as string;
    await deleteDocument(t.db, { licenseId: 'lic-versions', configuration: 'invoices', id: deletedTest });
    await deleteDocument(t.db, { licenseId: 'lic-versions', configuration: 'invoices', id: deletedTrain });

    const v2 = await trainVersion(profile.id);
    expect(v2.version).toBe(2);
    const v2Test = new Set(v2.test);
    for (const id of v1.test.filter((id) => id !== deletedTest)) expect(v2Test.has(id), id).toBe(true);
    for (const id of [deletedTest, deletedTrain]) {
      expect(v2.train).not.toContain(id);
      expect(v2.test).not.toContain(id);
    }
    expect(v2.train.length + v2.test.length).toBe(258);
    // About testPercent of the documents (membership is per id, so not exactly).
    expect(v2.test.length).toBeGreaterThan(258 * 0.1);
    expect(v2.test.length).toBeLessThan(258 * 0.3);

    const versions = await listProfileVersions(t.db, profile);
    expect(versions.map((v) => [v.version, v.documents, v.added, v.removed, v.datasetStatus])).toEqual([
      [2, 258, 201, 2, 'ready'],
      [1, 60, 60, 0, 'ready'],
    ]);
    const request = await findRequest(t.db, 'lic-versions', 'profile-invoices-v2');
    expect(request && (await findDatasetByRequestRow(t.db, request.id))?.status).toBe('ready');
  });
});
