import {
  billingSettleJobId,
  filesUploadJobId,
  fineTuneCreateJobId,
  notifySendJobId,
} from '@tuneline/contracts';
import {
  AT_PROVIDER,
  autoTrainFineTuneId,
  checkJobOptions,
  createFineTune,
  type DatasetRecord,
  endFineTune,
  type FineTuneStatus,
  findDataset,
  getFineTune,
  inTransaction,
  isTerminalStatus,
  requestUpload,
  storedJobOptionsProblem,
  TERMINAL_STATUSES,
  WAITING_FOR_TRAINER,
} from '@tuneline/db';
import { describe, expect } from 'vitest';
import { makeDataset, makeLicense } from '../api/fixtures.ts';
import { createFineTune as insertFineTune } from '../billing/fixtures.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

/**
 * The fine-tune lifecycle (packages/db/src/lifecycle): every birth and ending queues exactly the one
 * message that follows it, in the caller's transaction, and a repeat queues nothing.
 */

let t: TestDatabase;

test.beforeAll(async ({ database }) => {
  t = database;
  await makeLicense(t.db, 'lic-life', 0n);
});

async function dataset(status: 'ready' | 'uploaded' = 'uploaded'): Promise<DatasetRecord> {
  const found = await findDataset(t.db, await makeDataset(t.db, 'lic-life', status));
  if (!found) throw new Error('fixture dataset vanished');
  return found;
}

/** Outbox rows a fine-tune's birth or ending wrote, by queue. */
async function queued(fineTuneId: string) {
  const notifications = await t.db
    .selectFrom('notifications')
    .select('id')
    .where('fine_tune_id', '=', fineTuneId)
    .execute();
  const jobIds = [
    fineTuneCreateJobId(fineTuneId),
    billingSettleJobId(fineTuneId),
    ...notifications.map((n) => notifySendJobId(n.id)),
  ];
  const rows = await t.db.selectFrom('outbox').select('queue').where('job_id', 'in', jobIds).execute();
  const count = (queue: string) => rows.filter((r) => r.queue === queue).length;
  return { create: count('finetune-create'), settle: count('billing-settle'), notify: count('notify-send') };
}

const options = (extra: Record<string, unknown> = {}) => {
  const checked = checkJobOptions({
    description: 'q3',
    notifyEmails: 'a@example.com; b@example.com',
    ...extra,
  });
  if (!checked.ok) throw new Error(checked.message);
  return checked.options;
};

describe('status sets', () => {
  it('split every status into waiting on the trainer, at the provider, or finished', () => {
    const all: FineTuneStatus[] = [
      'pending',
      'creating',
      'validating_files',
      'queued',
      'running',
      'paused',
      'succeeded',
      'failed',
      'cancelled',
      'insufficient_credits',
    ];
    const sets = [WAITING_FOR_TRAINER, AT_PROVIDER, TERMINAL_STATUSES] as readonly (readonly string[])[];
    for (const status of all) expect(sets.filter((set) => set.includes(status))).toHaveLength(1);
    expect(all.filter(isTerminalStatus)).toEqual([...TERMINAL_STATUSES]);
  });
});

describe('job options', () => {
  it('are checked by the contracts schema alone, on the way in and on the stored row', () => {
    expect(checkJobOptions({ description: 'x'.repeat(121) })).toEqual({
      ok: false,
      message: 'description: must be at most 120 characters',
    });
    expect(options({ notifyEmails: 'a@example.com;A@example.com' }).notifyEmails).toEqual(['a@example.com']);
    const stored = { description: 'ok', notifyEmails: ['a@example.com'], hyperparameters: 'auto' };
    expect(storedJobOptionsProblem({ ...stored, suffix: 'inv-q3' })).toBeNull();
    expect(storedJobOptionsProblem({ ...stored, suffix: 'Has Spaces' })).toMatch(/^suffix: /);
    expect(storedJobOptionsProblem({ ...stored, suffix: 'x'.repeat(19) })).toMatch(
      /^suffix: must be at most 18/,
    );
    expect(storedJobOptionsProblem({ ...stored, suffix: 'ok', hyperparameters: { n_epochs: 0 } })).toMatch(
      /^hyperparameters/,
    );
  });
});

describe('birth', () => {
  it('creates a fine-tune with its finetune-create message, once per fixed id', async () => {
    const ds = await dataset();
    const id = autoTrainFineTuneId(ds.id);
    const first = await inTransaction(t.db, (tx) =>
      createFineTune(tx, ds, { id, options: options(), creditsPerMillionTokens: 3_000n }),
    );
    expect(first.created).toBe(true);
    expect(first.fineTune).toMatchObject({
      status: 'pending',
      suffix: ds.shortHash,
      notifyEmails: ['a@example.com', 'b@example.com'],
      creditsPerMillionTokens: 3_000n,
      settledAt: null,
    });
    const again = await inTransaction(t.db, (tx) =>
      createFineTune(tx, ds, { id, options: options({ description: 'other' }), creditsPerMillionTokens: 1n }),
    );
    expect(again).toMatchObject({ created: false, fineTune: { id, description: 'q3' } });
    expect(await queued(id)).toEqual({ create: 1, settle: 0, notify: 0 });
  });

  it('a fine-tune born failed is settled at birth and notified, never created at the provider', async () => {
    const ds = await dataset();
    const { fineTune } = await inTransaction(t.db, (tx) =>
      createFineTune(tx, ds, {
        options: options(),
        creditsPerMillionTokens: 0n,
        failure: { code: 'upload_failed', message: 'the provider refused the file' },
      }),
    );
    expect(fineTune).toMatchObject({
      status: 'failed',
      errorCode: 'upload_failed',
      settledAt: expect.any(Date),
    });
    expect(await queued(fineTune.id)).toEqual({ create: 0, settle: 0, notify: 2 });
  });
});

describe('upload', () => {
  it('moves a ready dataset to uploading with its files-upload message, once', async () => {
    const ds = await dataset('ready');
    expect(await requestUpload(t.db, ds)).toBe(true);
    expect(await requestUpload(t.db, ds)).toBe(false);
    expect((await findDataset(t.db, ds.id))?.status).toBe('uploading');
    const rows = await t.db
      .selectFrom('outbox')
      .select('id')
      .where('job_id', '=', filesUploadJobId(ds.id))
      .execute();
    expect(rows).toHaveLength(1);
  });
});

describe('ending', () => {
  const end = (id: string, ending: Parameters<typeof endFineTune>[2]) =>
    inTransaction(t.db, (tx) => endFineTune(tx, id, ending));

  it('by the trainer before any reservation: settled now and notified, nothing for billing', async () => {
    const ft = await insertFineTune(t.db, { status: 'pending', licenseId: 'lic-life' });
    const ended = await end(ft.id, { by: 'trainer', status: 'insufficient_credits', errorMessage: 'short' });
    expect(ended).toMatchObject({ status: 'insufficient_credits', settledAt: expect.any(Date) });
    expect(await end(ft.id, { by: 'trainer', status: 'failed' })).toBeUndefined();
    expect(await queued(ft.id)).toEqual({ create: 0, settle: 0, notify: 2 });
  });

  it('by the trainer holding a reservation: one billing-settle, which releases it and notifies', async () => {
    const ft = await insertFineTune(t.db, { status: 'creating', grant: 500n, reserve: 100n });
    const ended = await end(ft.id, { by: 'trainer', status: 'failed', errorCode: 'provider_rejected' });
    expect(ended).toMatchObject({ status: 'failed', creditsReserved: 100n, settledAt: null });
    expect(await end(ft.id, { by: 'trainer', status: 'cancelled' })).toBeUndefined();
    expect(await queued(ft.id)).toEqual({ create: 0, settle: 1, notify: 0 });
  });

  it('by the provider: one billing-settle with the trained tokens; the trainer cannot end it there', async () => {
    const ft = await insertFineTune(t.db, {
      status: 'running',
      grant: 500n,
      reserve: 100n,
      trainedTokens: null,
    });
    expect(await end(ft.id, { by: 'trainer', status: 'failed' })).toBeUndefined();
    const ended = await end(ft.id, {
      by: 'provider',
      status: 'succeeded',
      trainedTokens: 4_242,
      fineTunedModel: 'ft:model',
      polledAt: new Date(),
    });
    expect(ended).toMatchObject({ status: 'succeeded', trainedTokens: 4_242n, fineTunedModel: 'ft:model' });
    expect(await end(ft.id, { by: 'provider', status: 'failed' })).toBeUndefined();
    expect(await getFineTune(t.db, ft.id)).toMatchObject({
      status: 'succeeded',
      nextPollAt: null,
      settledAt: null,
    });
    expect(await queued(ft.id)).toEqual({ create: 0, settle: 1, notify: 0 });
  });
});
