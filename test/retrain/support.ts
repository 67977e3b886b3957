import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  documentContentHash,
  fineTuneRequestMessageSchema,
  trainingProfileSchema,
} from '@tuneline/contracts';
import { defaultCatalogue, LocalFileStorage } from '@tuneline/dataset';
import type { DatasetBuilderDeps } from '@tuneline/dataset-builder';
import { versionRequestId } from '@tuneline/dataset-builder/retrain';
import {
  type Db,
  insertProfileVersion,
  type OutboxRow,
  relayOutbox,
  saveTrainingProfile,
  storeDocuments,
} from '@tuneline/db';
import { createLogger } from '@tuneline/runtime';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';

/** The dataset-builder's dependencies over a temp storage dir. */
export function builderDeps(db: Db): { deps: DatasetBuilderDeps; storageDir: string; cleanup(): void } {
  const storageDir = mkdtempSync(join(tmpdir(), 'tuneline-retrain-'));
  return {
    deps: {
      db,
      log: createLogger('test', 'silent'),
      storage: new LocalFileStorage(storageDir),
      catalogue: defaultCatalogue,
    },
    storageDir,
    cleanup: () => rmSync(storageDir, { recursive: true, force: true }),
  };
}

/** A synthetic invoice whose id the training line shows (the prompt names it). */
export const invoice = (id: string, total = 10) => ({
  configuration: 'invoices',
  id,
  text: `INVOICE ${id}\nSupplier: ACME GmbH\nTotal: ${total}.00 EUR`,
  fields: { invoiceNumber: id, total },
});

export async function ingest(db: Db, licenseId: string, docs: ReturnType<typeof invoice>[]): Promise<void> {
  await storeDocuments(
    db,
    licenseId,
    docs.map((d) => ({ ...d, contentHash: documentContentHash(d) })),
  );
}

export async function saveProfile(db: Db, licenseId: string, over: Record<string, unknown> = {}) {
  const settings = trainingProfileSchema.parse({
    name: 'invoices',
    configuration: 'invoices',
    modelConfig: {
      systemPrompt: 'Extract the invoice fields as JSON.',
      userPromptTemplate: 'Document {{documentId}}:\n{{text}}',
      mappedFields: ['invoiceNumber', 'total'],
    },
    baseModel: 'gpt-4o-mini-2024-07-18',
    testPercent: 20,
    policy: { minNewDocuments: 50, minIntervalHours: 0 },
    ...over,
  });
  return (
    await saveTrainingProfile(db, { licenseId, name: settings.name, settings, enabled: settings.enabled })
  ).profile;
}

/** Unpublished outbox rows, marked published (what a relay would have sent). */
export async function drainOutbox(db: Db): Promise<OutboxRow[]> {
  const rows: OutboxRow[] = [];
  while ((await relayOutbox(db, async (batch) => void rows.push(...batch))) > 0) {}
  return rows;
}

export const requestMessages = (rows: OutboxRow[]) =>
  rows
    .filter((r) => r.queue === 'fine-tune-requests')
    .map((r) => fineTuneRequestMessageSchema.parse(r.payload));

/** The document ids in a JSONL file (each user message starts `Document <id>:`). */
export function idsInFile(storageDir: string, key: string | null): string[] {
  if (!key) return [];
  return readFileSync(join(storageDir, key), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const user = (JSON.parse(line) as { messages: { role: string; content: string }[] }).messages.find(
        (m) => m.role === 'user',
      );
      const match = /^Document (\S+):/.exec(user?.content ?? '');
      if (!match?.[1]) throw new Error(`no document id in ${line.slice(0, 80)}`);
      return match[1];
    });
}

/**
 * Version `version` of a saved profile as the pipeline leaves it once trained: its request row (the
 * version's request id), a dataset (the testing file at `testPath`), a succeeded, available fine-tune of
 * `model` (inactive) and the `profile_versions` row. Returns the fine-tune and dataset ids.
 */
export async function seedTrainedVersion(
  db: Db,
  profile: { id: string; licenseId: string; name: string },
  version: number,
  opts: { model?: string; testPath?: string; status?: 'running' | 'succeeded' } = {},
): Promise<{ fineTuneId: string; datasetId: string }> {
  const datasetId = await makeDataset(db, profile.licenseId, 'uploaded');
  const requestId = versionRequestId(profile.name, version);
  const dataset = await db
    .updateTable('datasets')
    .set({ test_path: opts.testPath ?? 'test.jsonl' })
    .where('id', '=', datasetId)
    .returning('request_row_id')
    .executeTakeFirstOrThrow();
  await db
    .updateTable('fine_tune_requests')
    .set({ request_id: requestId })
    .where('id', '=', dataset.request_row_id)
    .execute();
  const fineTuneId = await makeFineTune(db, profile.licenseId, datasetId, {
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.status ? { status: opts.status } : {}),
  });
  await insertProfileVersion(db, {
    profileId: profile.id,
    version,
    requestId,
    trigger: 'policy',
    documents: 60,
    added: 60,
    removed: 0,
    changeSeq: BigInt(version * 100),
    estimatedCredits: 100n,
  });
  return { fineTuneId, datasetId };
}
