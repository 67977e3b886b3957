import type { Db } from '@tuneline/db';
import { ensureLicenseAccount, licenseAccountId } from '@tuneline/ledger';
import { sql } from 'kysely';

/** The ledger's system account that inference charges are paid into (created by migration 0002). */
export const INFERENCE_ACCOUNT = 'system-inference';

export interface InferenceUsage {
  licenseId: string;
  fineTuneId: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  credits: bigint;
}

/**
 * Meters one completion: a row in `inference_usage` and a posted `usage` transfer license →
 * system-inference (`usage-<row id>`) that moves the cached balances in the same statement, all in one
 * transaction. @tuneline/ledger has no usage operation yet, so the transfer is written here, following
 * its rules (append-only row, deterministic id, counters and row in one statement). Usage is charged
 * after the fact and may take the balance below zero by at most one call; calls are refused up front
 * once nothing is available.
 */
export async function recordInferenceUsage(db: Db, usage: InferenceUsage): Promise<{ usageId: string }> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .insertInto('inference_usage')
      .values({
        license_id: usage.licenseId,
        fine_tune_id: usage.fineTuneId,
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        credits: usage.credits.toString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await ensureLicenseAccount(tx, usage.licenseId);
    const account = licenseAccountId(usage.licenseId);
    const id = `usage-${row.id}`;
    const amount = usage.credits.toString();
    const tokens = (usage.promptTokens + usage.completionTokens).toString();
    await sql`
      WITH transfer AS (
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
          fine_tune_id, model, tokens, memo)
        VALUES (${id}, 'usage', ${account}, ${INFERENCE_ACCOUNT}, ${amount}::bigint, ${usage.licenseId},
          ${usage.fineTuneId}::uuid, ${usage.model}, ${tokens}::bigint,
          ${`inference: ${usage.promptTokens} prompt + ${usage.completionTokens} completion tokens`})
        RETURNING amount
      ), debited AS (
        UPDATE ledger_accounts SET debits_posted = debits_posted + t.amount
        FROM transfer t WHERE id = ${account}
        RETURNING 1
      )
      UPDATE ledger_accounts SET credits_posted = credits_posted + t.amount
      FROM transfer t WHERE id = ${INFERENCE_ACCOUNT} AND EXISTS (SELECT 1 FROM debited)
    `.execute(tx);
    return { usageId: row.id };
  });
}
