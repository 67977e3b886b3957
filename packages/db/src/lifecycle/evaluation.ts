import { evaluateMessage } from '@tuneline/contracts';
import type { Executor } from '../connection.ts';
import { findDataset } from '../repositories/datasets.ts';
import {
  createEvaluationRun,
  finishEvaluationRun,
  getEvaluationOptions,
} from '../repositories/evaluations.ts';
import type { FineTuneRecord } from '../repositories/fine-tunes.ts';
import { writeOutbox } from '../repositories/outbox.ts';
import { queueOutcome } from './migration.ts';

/**
 * What follows a settlement, in billing's transaction: a succeeded fine-tune whose dataset has a
 * testing file (and whose request did not turn evaluation off) gets an evaluation run and the
 * evaluator's `evaluate` message, and its outcome e-mail waits for the evaluation; every other
 * fine-tune gets its outcome notifications now.
 */
export async function afterSettlement(
  tx: Executor,
  fineTune: Pick<
    FineTuneRecord,
    'id' | 'status' | 'notifyEmails' | 'correlationId' | 'datasetId' | 'licenseId' | 'fineTunedModel'
  >,
): Promise<{ notifications: number; evaluation: boolean }> {
  if (await evaluationDue(tx, fineTune)) {
    const options = await getEvaluationOptions(tx, fineTune.id);
    await createEvaluationRun(tx, {
      fineTuneId: fineTune.id,
      licenseId: fineTune.licenseId,
      correlationId: fineTune.correlationId,
      maxExamples: options.maxExamples,
    });
    await writeOutbox(
      tx,
      evaluateMessage({ fineTuneId: fineTune.id, correlationId: fineTune.correlationId }),
    );
    return { notifications: 0, evaluation: true };
  }
  return { notifications: await queueOutcome(tx, fineTune), evaluation: false };
}

async function evaluationDue(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'status' | 'datasetId' | 'fineTunedModel'>,
): Promise<boolean> {
  if (fineTune.status !== 'succeeded' || !fineTune.fineTunedModel) return false;
  const dataset = await findDataset(tx, fineTune.datasetId);
  if (!dataset?.testPath || dataset.testExamples <= 0) return false;
  return (await getEvaluationOptions(tx, fineTune.id)).evaluate;
}

/**
 * Ends a fine-tune's evaluation (with its summary, or failed with the reason the e-mail gives) and
 * queues the outcome notifications that waited for it (and ends the migration the fine-tune trains, if
 * any). A second call changes nothing but still makes sure the notifications exist (they are idempotent).
 */
export async function finishEvaluation(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'status' | 'notifyEmails' | 'correlationId'>,
  end: { status: 'succeeded'; summary: unknown } | { status: 'failed'; reason: string },
): Promise<{ finished: boolean; notifications: number }> {
  const finished = await finishEvaluationRun(tx, fineTune.id, end);
  return { finished, notifications: await queueOutcome(tx, fineTune) };
}
