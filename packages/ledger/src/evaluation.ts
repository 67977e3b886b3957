import type { Executor } from '@tuneline/db';
import { CompiledQuery, type QueryResult, sql } from 'kysely';
import { ensureLicenseAccount, licenseAccountId, revenueAccountId, transferIds } from './accounts.ts';

/**
 * The evaluation's money (issue 18.3). The trainer reserves the evaluation estimate with the training;
 * settlement posts the training charge and holds the rest (`evaluation_hold-<fineTuneId>`, see
 * `postReservation`'s `holdRestForEvaluation`); the evaluator stores its answers with their credits but
 * no ledger entry each, and when the run ends (succeeded, failed, timed out or skipped) charges the run
 * once: `evaluation-<fineTuneId>` posts the sum of the answers' credits and resolves the hold, releasing
 * what the evaluation did not use. One statement (`ledger_evaluation_charge`, migration 0060); a second
 * charge of the same run inserts nothing and moves nothing.
 */

const CHARGE_SQL =
  'SELECT o_outcome AS outcome, o_held AS held, o_charged AS charged, o_answers AS answers FROM ledger_evaluation_charge($1, $2, $3::uuid, $4, $5, $6, $7::uuid, $8)';

export interface EvaluationRunCharge {
  /** `charged` now; `already` charged before (a replay); `nothing` (no hold, no answer: no entry). */
  outcome: 'charged' | 'already' | 'nothing';
  /** What the evaluation hold held (0 without one). */
  held: bigint;
  /** The run's charge: the sum of its answers' credits. */
  charged: bigint;
  /** Given back to the license: the hold's unused part. */
  released: bigint;
  answers: number;
}

/**
 * Charges a finished evaluation run and resolves its fine-tune's evaluation hold, exactly once. Call it
 * in the transaction that ends the run, after the run row is locked (ending it does): answers are only
 * stored while the run is running, so the sum is final. Without a hold (a fine-tune settled before
 * evaluation holds existed) the charge is posted on its own, and nothing is written when there is
 * nothing to charge.
 */
export async function chargeEvaluationRun(
  tx: Executor,
  run: { runId: string; fineTuneId: string; licenseId: string; model: string },
): Promise<EvaluationRunCharge> {
  await ensureLicenseAccount(tx, run.licenseId);
  const result = (await tx.executeQuery(
    CompiledQuery.raw(CHARGE_SQL, [
      transferIds.evaluationHold(run.fineTuneId),
      transferIds.evaluation(run.fineTuneId),
      run.runId,
      licenseAccountId(run.licenseId),
      revenueAccountId(run.fineTuneId),
      run.licenseId,
      run.fineTuneId,
      run.model,
    ]),
  )) as QueryResult<{
    outcome: EvaluationRunCharge['outcome'];
    held: string;
    charged: string;
    answers: string;
  }>;
  const row = result.rows[0];
  if (!row) throw new Error(`ledger_evaluation_charge returned no row for ${run.fineTuneId}`);
  const held = BigInt(row.held);
  const charged = BigInt(row.charged);
  return {
    outcome: row.outcome,
    held,
    charged,
    released: held > charged ? held - charged : 0n,
    answers: Number(row.answers),
  };
}

/** The `evaluation` charges of a fine-tune (its run's, and per-answer ones of older runs): credits and tokens. */
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
