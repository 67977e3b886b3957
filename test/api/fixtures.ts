import { randomUUID } from 'node:crypto';
import { createApiKey } from '@tuneline/api';
import type { Db } from '@tuneline/db';
import { grantCredits } from '@tuneline/ledger';
import { insertDatasetRow } from '../support/rows.ts';

/** Rows inserted directly, standing for what the stages would have written. */

export async function makeLicense(
  db: Db,
  id: string,
  credits = 100_000n,
): Promise<{ id: string; key: string }> {
  await db
    .insertInto('licenses')
    .values({ id, name: `License ${id}` })
    .execute();
  const { key } = await createApiKey(db, id);
  if (credits > 0n) {
    await db
      .transaction()
      .execute((tx) => grantCredits(tx, { grantId: `seed-${id}`, licenseId: id, amount: credits }));
  }
  return { id, key };
}

export async function makeDataset(
  db: Db,
  licenseId: string,
  status: 'ready' | 'uploaded' | 'building' | 'invalid' = 'ready',
): Promise<string> {
  const { datasetId } = await insertDatasetRow(db, licenseId, {
    base_model: 'gpt-4o-mini-2024-07-18',
    status,
    test_percent: 20,
    content_hash: 'a'.repeat(64),
    short_hash: 'a1b2c3d4',
    train_path: 'train.jsonl',
    test_path: 'test.jsonl',
    train_examples: 48,
    test_examples: 12,
    train_tokens: 24_000,
    test_tokens: 6_000,
    epochs: 3,
    estimated_billed_tokens: 72_000,
    estimated_credits: 216,
    warnings: JSON.stringify([{ code: 'few_examples', message: 'fewer than 50 examples' }]),
    train_file_id: status === 'uploaded' ? 'file-train' : null,
    test_file_id: status === 'uploaded' ? 'file-test' : null,
  });
  return datasetId;
}

export interface FineTuneFixture {
  status?: 'running' | 'succeeded' | 'failed';
  model?: string;
  available?: boolean;
  active?: boolean;
  trainedTokens?: number;
  withHistory?: boolean;
}

export async function makeFineTune(
  db: Db,
  licenseId: string,
  datasetId: string,
  f: FineTuneFixture = {},
): Promise<string> {
  const status = f.status ?? 'succeeded';
  const done = status === 'succeeded';
  const row = await db
    .insertInto('fine_tunes')
    .values({
      license_id: licenseId,
      dataset_id: datasetId,
      correlation_id: randomUUID(),
      status,
      base_model: 'gpt-4o-mini-2024-07-18',
      description: `Invoices ${status}`,
      notify_emails: ['ops@example.com'],
      suffix: 'invoices',
      hyperparameters: JSON.stringify('auto'),
      credits_per_million_tokens: 3000,
      provider_job_id: `ftjob-${randomUUID()}`,
      fine_tuned_model: done
        ? (f.model ?? `ft:gpt-4o-mini-2024-07-18:tuneline:invoices:${randomUUID().slice(0, 8)}`)
        : null,
      trained_tokens: done ? (f.trainedTokens ?? 72_000) : null,
      credits_reserved: 260,
      credits_charged: done ? 216 : null,
      finished_at: status === 'running' ? null : new Date(),
      settled_at: done ? new Date() : null,
      available: f.available ?? done,
      active: f.active ?? false,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  if (f.withHistory) {
    const t0 = Date.now() - 60_000;
    await db
      .insertInto('provider_events')
      .values(
        ['Validating training file', 'Fine-tuning job started', 'The job has successfully completed'].map(
          (message, i) => ({
            id: `ftevent-${randomUUID()}`,
            fine_tune_id: row.id,
            created_at: new Date(t0 + i * 1000),
            level: 'info',
            message,
            type: 'message',
            data: null,
          }),
        ),
      )
      .execute();
    await db
      .insertInto('checkpoints')
      .values(
        [1.9, 1.2, 0.7, 0.45].map((loss, i) => ({
          id: `ftckpt-${randomUUID()}`,
          fine_tune_id: row.id,
          step: (i + 1) * 10,
          fine_tuned_model_checkpoint: `ft:gpt-4o-mini:ckpt-step-${(i + 1) * 10}`,
          metrics: JSON.stringify({ step: (i + 1) * 10, train_loss: loss }),
          created_at: new Date(t0 + i * 1000),
        })),
      )
      .execute();
  }
  return row.id;
}
