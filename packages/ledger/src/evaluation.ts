import type { Executor } from '@tuneline/db';
import { sql } from 'kysely';
import { ensureLicenseAccount, licenseAccountId } from './accounts.ts';

/** The system account inference and evaluation charges are paid into (created by migration 0002). */
export const INFERENCE_ACCOUNT = 'system-inference';

export interface EvaluationCharge {
  fineTuneId: string;
  licenseId: string;
  /** `evaluationTransferId(...)`: one per (fine-tune, role, example position). */
  transferId: string;
  amount: bigint;
  model: string;
  promptTokens: number;
  completionTokens: number;
}

/** The deterministic id of one evaluation call's charge. */
export function evaluationTransferId(fineTuneId: string, role: string, position: number): string {
  return `evaluation-${fineTuneId}-${role}-${position}`;
}

/**
 * Charges one evaluation call: a posted `evaluation` transfer license → system-inference for the usage
 * the provider reported. Row and counters move in one statement; a replay of the same id inserts
 * nothing and moves nothing. A charge the balance cannot cover sets overage_blocked (as an overage
 * does), so the license takes no new reservation until topped up. Returns whether it was written now.
 */
export async function chargeEvaluation(tx: Executor, charge: EvaluationCharge): Promise<boolean> {
  if (charge.amount < 0n) throw new RangeError('evaluation charges are non-negative');
  if (!charge.transferId.startsWith(`evaluation-${charge.fineTuneId}-`)) {
    throw new RangeError(`evaluation transfer id ${charge.transferId} does not name ${charge.fineTuneId}`);
  }
  await ensureLicenseAccount(tx, charge.licenseId);
  const account = licenseAccountId(charge.licenseId);
  const tokens = (charge.promptTokens + charge.completionTokens).toString();
  const result = await sql<{ written: number }>`
    WITH transfer AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, tokens, memo)
      VALUES (${charge.transferId}, 'evaluation', ${account}, ${INFERENCE_ACCOUNT},
        ${charge.amount.toString()}::bigint, ${charge.licenseId}, ${charge.fineTuneId}::uuid, ${charge.model},
        ${tokens}::bigint,
        ${`evaluation: ${charge.promptTokens} prompt + ${charge.completionTokens} completion tokens`})
      ON CONFLICT (id) DO NOTHING
      RETURNING amount
    ), debited AS (
      UPDATE ledger_accounts
      SET debits_posted = debits_posted + t.amount,
          overage_blocked = overage_blocked
            OR credits_posted - debits_posted - t.amount - debits_pending < 0
      FROM transfer t WHERE id = ${account}
      RETURNING 1
    ), credited AS (
      UPDATE ledger_accounts SET credits_posted = credits_posted + t.amount
      FROM transfer t WHERE id = ${INFERENCE_ACCOUNT} AND EXISTS (SELECT 1 FROM debited)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM credited)::int AS written`.execute(tx);
  return (result.rows[0]?.written ?? 0) === 1;
}

/** The `evaluation` charges of a fine-tune: credits and tokens. */
export async function evaluationCharges(
  db: Executor,
  fineTuneId: string,
): Promise<{ transfers: number; credits: bigint; tokens: bigint }> {
  const row = await db
    .selectFrom('ledger_transfers')
    .select((eb) => [
      eb.fn.countAll<string>().as('n'),
      eb.fn.coalesce(eb.fn.sum<string>('amount'), sql<string>`0`).as('credits'),
      eb.fn.coalesce(eb.fn.sum<string>('tokens'), sql<string>`0`).as('tokens'),
    ])
    .where('fine_tune_id', '=', fineTuneId)
    .where('kind', '=', 'evaluation')
    .executeTakeFirstOrThrow();
  return { transfers: Number(row.n), credits: BigInt(row.credits), tokens: BigInt(row.tokens) };
}
