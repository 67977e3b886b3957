import { randomUUID } from 'node:crypto';
import type { Db, FineTuneStatus } from '@tuneline/db';
import { grantCredits, reserveCredits } from '@tuneline/ledger';
import { insertDatasetRow } from '../support/rows.ts';

/** Rows a fine-tune needs (license, request, dataset), inserted directly, plus the fine-tune itself. */
export interface FineTuneFixture {
  licenseId?: string;
  status?: FineTuneStatus;
  trainedTokens?: bigint | null;
  creditsPerMillionTokens?: bigint;
  notifyEmails?: string[];
  /** Grant this much to the license first (grant id unique per fine-tune). */
  grant?: bigint;
  /** Reserve this much for the fine-tune (as the trainer would). */
  reserve?: bigint;
  errorMessage?: string | null;
  baseModel?: string;
}

export async function createFineTune(db: Db, f: FineTuneFixture = {}) {
  const licenseId = f.licenseId ?? `lic-${randomUUID().slice(0, 8)}`;
  const baseModel = f.baseModel ?? 'gpt-4o-mini-2024-07-18';
  await db
    .insertInto('licenses')
    .values({ id: licenseId, name: licenseId })
    .onConflict((oc) => oc.doNothing())
    .execute();
  const { datasetId, correlationId } = await insertDatasetRow(
    db,
    licenseId,
    { base_model: baseModel, status: 'uploaded', test_percent: 0, auto_train: true },
    { request_id: randomUUID(), correlation_id: `corr-${randomUUID()}` },
  );
  const status = f.status ?? 'succeeded';
  const terminal = ['succeeded', 'failed', 'cancelled', 'insufficient_credits'].includes(status);
  const ft = await db
    .insertInto('fine_tunes')
    .values({
      license_id: licenseId,
      dataset_id: datasetId,
      correlation_id: correlationId,
      status,
      base_model: baseModel,
      description: 'invoices Q3',
      notify_emails: f.notifyEmails ?? ['ops@example.com', 'Ana.Lopez@example.org'],
      suffix: 'inv-q3',
      hyperparameters: JSON.stringify({}),
      credits_per_million_tokens: (f.creditsPerMillionTokens ?? 3_000n).toString(),
      trained_tokens: f.trainedTokens === undefined ? 123_456n : f.trainedTokens,
      fine_tuned_model: status === 'succeeded' ? `ft:${baseModel}:acme:inv-q3:abc123` : null,
      error_message: f.errorMessage ?? (status === 'failed' ? 'Training file has too few examples' : null),
      credits_reserved: f.reserve?.toString() ?? null,
      finished_at: terminal ? new Date() : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (f.grant !== undefined) {
    await grantCredits(db, { grantId: `fixture-${ft.id}`, licenseId, amount: f.grant });
  }
  if (f.reserve !== undefined) {
    const r = await reserveCredits(db, { fineTuneId: ft.id, licenseId, amount: f.reserve, model: baseModel });
    if (!r.ok) throw new Error(`fixture reservation failed: ${r.reason}`);
  }
  return ft;
}
