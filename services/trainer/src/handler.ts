import {
  fineTuneCreateMessage,
  type Hyperparameters,
  hyperparametersSchema,
  scheduledPollMessage,
} from '@tuneline/contracts';
import { estimateEvaluation } from '@tuneline/dataset';
import {
  type DatasetRecord,
  type Executor,
  endFineTune,
  type FineTuneRecord,
  findDataset,
  fineTuneStatusFromProvider,
  getEvaluationOptions,
  getFineTune,
  inTransaction,
  isTerminalStatus,
  isWaitingForTrainer,
  listFineTunesAwaitingCreation,
  lockFineTune,
  markFineTuneCreating,
  recordProviderJob,
  storedJobOptionsProblem,
  writeOutbox,
} from '@tuneline/db';
import {
  fineTuneEstimate,
  insufficientCreditsMessage,
  reservationAmount,
  reserveCredits,
} from '@tuneline/ledger';
import { ProviderError } from '@tuneline/provider';
import { defineStage, PermanentError, type StageDeps, stageFailure } from '@tuneline/runtime';

/** The provider job as far as the trainer cares. */
export interface ProviderJob {
  id: string;
  status: string;
  estimated_finish?: number | null;
}

type ExplicitHyperparameters = Exclude<Hyperparameters, 'auto'>;

/** `'auto'` is the provider's default: send nothing rather than the word. */
export function explicitHyperparameters(value: unknown): ExplicitHyperparameters | undefined {
  const parsed = hyperparametersSchema.safeParse(value);
  if (!parsed.success || parsed.data === 'auto') return undefined;
  return parsed.data;
}

/** What the trainer needs from the provider profile. */
export interface TrainerProvider {
  findJobByMetadata(key: string, value: string): Promise<ProviderJob | null | undefined>;
  createJob(input: {
    model: string;
    trainingFile: string;
    validationFile?: string;
    suffix?: string;
    hyperparameters?: ExplicitHyperparameters;
    metadata: Record<string, string>;
  }): Promise<ProviderJob>;
}

export interface TrainerDeps extends StageDeps {
  provider: TrainerProvider;
  /** Several providers: the profile for a fine-tune's provider (null: the default). */
  providers?: { for(provider: string | null): TrainerProvider };
  /** The reservation is the estimate plus this margin, so overage is rare. Default 10. */
  reservationMarginPercent: number;
  /**
   * Delay of a new job's first poll. The create response is its first snapshot, and a webhook
   * reports the ending at once, so polling right away would only repeat what is known.
   */
  firstPollDelayMs: number;
}

/** Estimated credits plus the margin, rounded up (the ledger's rule, shared with the API's check). */
export { reservationAmount };

/** Stage 3: consumes `finetune-create`. */
export const trainerStage = defineStage<'finetune-create', TrainerDeps>({
  queue: 'finetune-create',
  async handle(message, ctx, stageDeps) {
    const { db } = stageDeps;
    let fineTune = await getFineTune(db, message.fineTuneId);
    if (!fineTune) throw new PermanentError(`fine-tune ${message.fineTuneId} does not exist`);
    if (!isWaitingForTrainer(fineTune.status)) return; // already created (or finished): a duplicate
    let deps = stageDeps;
    try {
      deps = { ...stageDeps, provider: stageDeps.providers?.for(fineTune.provider) ?? stageDeps.provider };
    } catch (err) {
      // Its provider is not configured here: it ends at once, saying which and how (credits released).
      const reason = err instanceof Error ? err.message : String(err);
      await endBeforeProvider(db, fineTune.id, 'failed', 'provider_not_configured', reason);
      ctx.log.warn({ err: reason }, 'fine-tune names a provider this deployment cannot reach');
      return;
    }
    const dataset = await findDataset(db, fineTune.datasetId);
    if (!dataset) throw new Error(`dataset ${fineTune.datasetId} of fine-tune ${fineTune.id} not found`);

    // True when this attempt moved the row to `creating`: no attempt before it can have created a job.
    let reservedNow = false;
    if (fineTune.status === 'pending') {
      const reserved = await reserve(deps, fineTune, dataset);
      if (!reserved) return;
      fineTune = reserved.row;
      reservedNow = reserved.reservedNow;
    }
    if (fineTune.status !== 'creating') return;

    // A row found in `creating` may have a provider job we never saw (a crash after create, a lost
    // answer): look before creating. One this attempt just reserved cannot, which saves a list call.
    const adopted = reservedNow
      ? null
      : await deps.provider.findJobByMetadata('fine_tune_id', fineTune.id).catch((err: unknown) => {
          throw stageFailure(err);
        });
    if (adopted) {
      ctx.log.info({ providerJobId: adopted.id }, 'adopting the provider job found by metadata');
      await record(deps, fineTune, adopted);
      return;
    }
    if (fineTune.cancelRequestedAt) {
      await endBeforeProvider(
        db,
        fineTune.id,
        'cancelled',
        null,
        'cancelled before the provider job was created',
      );
      return;
    }
    if (!dataset.trainFileId) throw new Error(`dataset ${dataset.id} has no uploaded training file yet`);

    let job: ProviderJob;
    try {
      const hyperparameters = explicitHyperparameters(fineTune.hyperparameters);
      job = await deps.provider.createJob({
        model: fineTune.baseModel,
        trainingFile: dataset.trainFileId,
        ...(dataset.testFileId ? { validationFile: dataset.testFileId } : {}),
        suffix: fineTune.suffix,
        ...(hyperparameters ? { hyperparameters } : {}),
        metadata: { fine_tune_id: fineTune.id },
      });
    } catch (err) {
      // The create may have happened although we saw an error (lost response): look again first.
      const found = await deps.provider.findJobByMetadata('fine_tune_id', fineTune.id).catch(() => null);
      if (found) {
        ctx.log.info({ providerJobId: found.id }, 'create failed but the job exists: adopting it');
        await record(deps, fineTune, found);
        return;
      }
      if (err instanceof ProviderError && (err.kind === 'rejected' || err.kind === 'not_found')) {
        // The provider refused the job: end the fine-tune with its reason; billing releases the credits.
        await endBeforeProvider(db, fineTune.id, 'failed', 'provider_rejected', err.message);
        ctx.log.warn({ err: err.message }, 'provider refused the job');
        return;
      }
      // A bad key or missing permission (auth) is the deployment's problem, not this job's: like an
      // outage it retries with backoff; a rate limit pauses the queue.
      throw stageFailure(err);
    }
    await record(deps, fineTune, job);
    ctx.log.info({ providerJobId: job.id }, 'provider job created');
  },

  async recover({ db }) {
    const rows = await listFineTunesAwaitingCreation(db);
    return rows.map((f) => fineTuneCreateMessage({ fineTuneId: f.id, correlationId: f.correlationId }));
  },
});

/**
 * Validates, then reserves the estimate plus margin and moves to `creating` in one transaction.
 * Returns the row in `creating` (`reservedNow` when this call moved it there), or null when the
 * fine-tune ended here (bad options, no credits, cancelled).
 */
async function reserve(
  deps: TrainerDeps,
  fineTune: FineTuneRecord,
  dataset: DatasetRecord,
): Promise<{ row: FineTuneRecord; reservedNow: boolean } | null> {
  return inTransaction(deps.db, async (tx) => {
    const row = await lockFineTune(tx, fineTune.id);
    if (row?.status !== 'pending') return row?.status === 'creating' ? { row, reservedNow: false } : null;
    const end = (
      status: 'failed' | 'cancelled' | 'insufficient_credits',
      code: string | null,
      message: string,
    ) => endFineTune(tx, row.id, { by: 'trainer', status, errorCode: code, errorMessage: message });
    if (row.cancelRequestedAt) {
      await end('cancelled', null, 'cancelled before training started');
      return null;
    }
    const problem = storedJobOptionsProblem(row);
    if (problem) {
      await end('failed', 'invalid_job_options', problem);
      return null;
    }
    // The fine-tune's own estimate: its epochs may not be the ones the dataset was estimated for.
    const estimate = fineTuneEstimate(dataset, {
      hyperparameters: explicitHyperparameters(row.hyperparameters),
      creditsPerMillionTokens: row.creditsPerMillionTokens,
    });
    if (estimate === null) {
      // Nothing to reserve against: end here rather than leave the row waiting forever.
      await end('failed', 'no_estimate', `dataset ${dataset.id} has no credit estimate`);
      return null;
    }
    // The evaluation of the testing file is reserved with the training (estimated apart, see below).
    const evaluation = await evaluationReservationEstimate(tx, row, dataset);
    const marginPercent = deps.reservationMarginPercent;
    const amount = reservationAmount(estimate.credits + evaluation, marginPercent);
    const result = await reserveCredits(tx, {
      fineTuneId: row.id,
      licenseId: row.licenseId,
      amount,
      model: row.baseModel,
    });
    if (!result.ok) {
      const { reason, required, available } = result;
      const shortfall = required > available ? required - available : 0n;
      const message = insufficientCreditsMessage({
        reason,
        estimate: estimate.credits + evaluation,
        parts: { training: estimate.credits, evaluation },
        marginPercent,
        required,
        available,
        shortfall,
      });
      await end('insufficient_credits', reason, message);
      return null;
    }
    const creating = await markFineTuneCreating(tx, row.id, amount);
    return creating ? { row: creating, reservedNow: true } : null;
  });
}

/**
 * The evaluation part of the reservation: the testing examples (capped by the request's
 * `evaluation.maxExamples`) × the compared models × the expected tokens, priced as inference; 0 without
 * a testing file or with `evaluate: false`. Kept apart from the training estimate.
 */
async function evaluationReservationEstimate(
  tx: Executor,
  fineTune: FineTuneRecord,
  dataset: DatasetRecord,
): Promise<bigint> {
  const options = await getEvaluationOptions(tx, fineTune.id);
  return estimateEvaluation({
    baseModel: fineTune.baseModel,
    testExamples: dataset.testExamples,
    testTokens: dataset.testTokens,
    evaluate: options.evaluate,
    maxExamples: options.maxExamples,
  }).credits;
}

/**
 * Ends a fine-tune that holds a reservation but never got a provider job; the lifecycle queues its
 * settlement, which releases the credits and notifies.
 */
async function endBeforeProvider(
  db: Executor,
  id: string,
  status: 'failed' | 'cancelled',
  code: string | null,
  message: string,
): Promise<void> {
  await inTransaction(db, (tx) =>
    endFineTune(tx, id, { by: 'trainer', status, errorCode: code, errorMessage: message }),
  );
}

/**
 * Stores the provider job id and queues the first poll, once. A job that has already ended (adopted
 * after a lost response) is polled at once: the poller records endings and queues settlement.
 */
async function record(deps: TrainerDeps, fineTune: FineTuneRecord, job: ProviderJob): Promise<void> {
  await inTransaction(deps.db, async (tx) => {
    const status = fineTuneStatusFromProvider(job.status);
    const ended = isTerminalStatus(status);
    const delayMs = ended ? 0 : deps.firstPollDelayMs;
    const updated = await recordProviderJob(
      tx,
      fineTune.id,
      {
        providerJobId: job.id,
        status: ended ? 'running' : status,
        estimatedFinish: job.estimated_finish ? new Date(job.estimated_finish * 1000) : null,
      },
      delayMs,
    );
    if (!updated) return;
    await writeOutbox(
      tx,
      scheduledPollMessage({
        fineTuneId: fineTune.id,
        correlationId: fineTune.correlationId,
        pollCount: updated.pollCount,
        delayMs,
      }),
    );
  });
}
