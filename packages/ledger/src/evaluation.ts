import type { Executor } from '@tuneline/db';
import { sql } from 'kysely';
import { ensureLicenseAccount, licenseAccountId, postChargesLegs } from './accounts.ts';

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

/** One scored answer of an evaluation with its usage and charge, as `recordEvaluationAnswers` stores it. */
export interface EvaluationAnswerInput {
  runId: string;
  role: string;
  position: number;
  exampleId: string;
  model: string;
  answer: string;
  validJson: boolean;
  extraKeys: string[];
  fields: unknown[];
  correctFields: number;
  scoredFields: number;
  promptTokens: number;
  completionTokens: number;
  /** Credits for the usage (`inferenceCredits`). */
  credits: bigint;
  /** `evaluationTransferId(fineTuneId, role, position)`. */
  transferId: string;
}

/**
 * Stores evaluation answers of one fine-tune and charges them, in ONE statement (so, alone, one round
 * trip and one commit for the whole batch): the answer rows are inserted first (ON CONFLICT DO NOTHING
 * on their (run, role, position) key), and only the answers inserted now get their `evaluation`
 * transfer; the two accounts move by the sum of those. A second writer of the same answer (a resumed
 * run, a duplicate job) inserts nothing and charges nothing. The license account must exist
 * (`ensureLicenseAccount`, once per run). Returns how many answers were stored now.
 */
export async function recordEvaluationAnswers(
  db: Executor,
  charge: { fineTuneId: string; licenseId: string },
  answers: readonly EvaluationAnswerInput[],
): Promise<number> {
  if (answers.length === 0) return 0;
  for (const a of answers) {
    if (a.credits < 0n) throw new RangeError('evaluation charges are non-negative');
    if (!a.transferId.startsWith(`evaluation-${charge.fineTuneId}-`)) {
      throw new RangeError(`evaluation transfer id ${a.transferId} does not name ${charge.fineTuneId}`);
    }
  }
  const account = licenseAccountId(charge.licenseId);
  const rows = JSON.stringify(
    answers.map((a) => ({
      run_id: a.runId,
      role: a.role,
      position: a.position,
      example_id: a.exampleId,
      model: a.model,
      answer: a.answer,
      valid_json: a.validJson,
      extra_keys: a.extraKeys,
      fields: a.fields,
      correct_fields: a.correctFields,
      scored_fields: a.scoredFields,
      prompt_tokens: a.promptTokens,
      completion_tokens: a.completionTokens,
      credits: a.credits.toString(),
      transfer_id: a.transferId,
    })),
  );
  const result = await sql<{ stored: number; charged: number }>`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${rows}::jsonb) AS x(run_id uuid, role text, position integer,
        example_id text, model text, answer text, valid_json boolean, extra_keys jsonb, fields jsonb,
        correct_fields integer, scored_fields integer, prompt_tokens integer, completion_tokens integer,
        credits bigint, transfer_id text)
    ), answer AS (
      INSERT INTO evaluation_answers (run_id, role, position, example_id, model, answer, valid_json,
        extra_keys, fields, correct_fields, scored_fields, prompt_tokens, completion_tokens, credits, transfer_id)
      SELECT run_id, role, position, example_id, model, answer, valid_json, extra_keys, fields, correct_fields,
        scored_fields, prompt_tokens, completion_tokens, credits, transfer_id
      FROM input ORDER BY role, position
      ON CONFLICT (run_id, role, position) DO NOTHING
      RETURNING credits, transfer_id, model, prompt_tokens, completion_tokens
    ), transfer AS (
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, tokens, memo)
      SELECT a.transfer_id, 'evaluation', ${account}, ${INFERENCE_ACCOUNT}, a.credits, ${charge.licenseId},
        ${charge.fineTuneId}::uuid, a.model, a.prompt_tokens + a.completion_tokens,
        format('evaluation: %s prompt + %s completion tokens', a.prompt_tokens, a.completion_tokens)
      FROM answer a ORDER BY a.transfer_id
      RETURNING amount
    ), total AS (
      SELECT sum(amount) AS amount, count(*) AS n FROM transfer
    ), ${postChargesLegs(account, INFERENCE_ACCOUNT)}
    SELECT (SELECT count(*) FROM answer)::int AS stored, (SELECT n FROM total)::int AS charged,
      (SELECT count(*) FROM credited)::int AS moved`.execute(db);
  const row = result.rows[0] as { stored: number; charged: number; moved: number } | undefined;
  if (row && (row.stored !== row.charged || (row.stored > 0 && row.moved !== 1))) {
    throw new Error(
      `evaluation answers of ${charge.fineTuneId}: stored ${row.stored}, charged ${row.charged}, accounts moved ${row.moved}`,
    );
  }
  return row?.stored ?? 0;
}
