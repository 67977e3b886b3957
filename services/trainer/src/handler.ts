import {
  formatZodError,
  type Hyperparameters,
  hyperparametersSchema,
  parseEmailList,
} from '@tuneline/contracts';
import {
  createJobMessage,
  type Dataset,
  type Executor,
  type FineTune,
  type FineTuneStatus,
  fineTuneStatusFromProvider,
  getFineTune,
  inTransaction,
  isTerminalStatus,
  lockFineTune,
  pollMessage,
  queueOutcomeNotifications,
  recordProviderJob,
  scheduledPollJobId,
  settleMessage,
  transitionFineTune,
  writeOutbox,
} from '@tuneline/db';
import { reserveCredits } from '@tuneline/ledger';
import { defineStage, PermanentError, type StageDeps } from '@tuneline/runtime';

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
  /** The reservation is the estimate plus this margin, so overage is rare. Default 10. */
  reservationMarginPercent: number;
  /**
   * Delay of a new job's first poll. The create response is its first snapshot, and a webhook
   * reports the ending at once, so polling right away would only repeat what is known.
   */
  firstPollDelayMs: number;
}

const SUFFIX = /^[a-z0-9-]{1,18}$/;
const NOT_STARTED: FineTuneStatus[] = ['pending', 'creating'];

/** Estimated credits plus the margin, rounded up to whole credits. */
export function reservationAmount(estimatedCredits: bigint, marginPercent: number): bigint {
  const margin = BigInt(Math.round(marginPercent * 100));
  return (estimatedCredits * (10_000n + margin) + 9_999n) / 10_000n;
}

/** Checks what is stored on the row once more before money moves; returns the problem, if any. */
export function validateJobOptions(fineTune: FineTune): string | null {
  const problems: string[] = [];
  if (fineTune.description.length > 120) problems.push('description: must be at most 120 characters');
  const emails = parseEmailList(fineTune.notify_emails.join(';'));
  if (!emails.ok) problems.push(`notifyEmails: ${emails.message}`);
  if (!SUFFIX.test(fineTune.suffix)) {
    problems.push('suffix: 1 to 18 lower-case letters, digits or "-"');
  }
  const hp = hyperparametersSchema.safeParse(fineTune.hyperparameters);
  if (!hp.success) problems.push(`hyperparameters: ${formatZodError(hp.error)}`);
  return problems.length ? problems.join('; ') : null;
}

/** Stage 3: consumes `finetune-create`. */
export const trainerStage = defineStage<'finetune-create', TrainerDeps>({
  queue: 'finetune-create',
  async handle(message, ctx, deps) {
    const { db } = deps;
    let fineTune = await getFineTune(db, message.fineTuneId);
    if (!fineTune) throw new PermanentError(`fine-tune ${message.fineTuneId} does not exist`);
    if (!NOT_STARTED.includes(fineTune.status)) return; // already created (or finished): a duplicate
    const dataset = await db
      .selectFrom('datasets')
      .selectAll()
      .where('id', '=', fineTune.dataset_id)
      .executeTakeFirstOrThrow();

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
    const adopted = reservedNow ? null : await deps.provider.findJobByMetadata('fine_tune_id', fineTune.id);
    if (adopted) {
      ctx.log.info({ providerJobId: adopted.id }, 'adopting the provider job found by metadata');
      await record(deps, fineTune, adopted);
      return;
    }
    if (fineTune.cancel_requested_at) {
      await endBeforeProvider(
        db,
        fineTune.id,
        'cancelled',
        null,
        'cancelled before the provider job was created',
        true,
      );
      return;
    }
    if (!dataset.train_file_id) throw new Error(`dataset ${dataset.id} has no uploaded training file yet`);

    let job: ProviderJob;
    try {
      job = await deps.provider.createJob({
        model: fineTune.base_model,
        trainingFile: dataset.train_file_id,
        ...(dataset.test_file_id ? { validationFile: dataset.test_file_id } : {}),
        suffix: fineTune.suffix,
        ...(explicitHyperparameters(fineTune.hyperparameters)
          ? { hyperparameters: explicitHyperparameters(fineTune.hyperparameters) }
          : {}),
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
      if (err instanceof PermanentError && isAuthError(err)) {
        // A bad key or missing permission is the deployment's problem, not this job's: retry later.
        throw new Error(err.message);
      }
      if (err instanceof PermanentError) {
        // The provider refused the job: end the fine-tune with its reason; billing releases the credits.
        await endBeforeProvider(db, fineTune.id, 'failed', 'provider_rejected', err.message, true);
        ctx.log.warn({ err: err.message }, 'provider refused the job');
        return;
      }
      throw err;
    }
    await record(deps, fineTune, job);
    ctx.log.info({ providerJobId: job.id }, 'provider job created');
  },

  async recover({ db }) {
    const rows = await db
      .selectFrom('fine_tunes')
      .select(['id', 'correlation_id'])
      .where('status', 'in', NOT_STARTED)
      .orderBy('created_at')
      .limit(10_000)
      .execute();
    return rows.map(createJobMessage);
  },
});

/**
 * Validates, then reserves the estimate plus margin and moves to `creating` in one transaction.
 * Returns the row in `creating` (`reservedNow` when this call moved it there), or null when the
 * fine-tune ended here (bad options, no credits, cancelled).
 */
async function reserve(
  deps: TrainerDeps,
  fineTune: FineTune,
  dataset: Dataset,
): Promise<{ row: FineTune; reservedNow: boolean } | null> {
  return inTransaction(deps.db, async (tx) => {
    const row = await lockFineTune(tx, fineTune.id);
    if (row?.status !== 'pending') return row?.status === 'creating' ? { row, reservedNow: false } : null;
    if (row.cancel_requested_at) {
      await endInTx(tx, row.id, 'cancelled', null, 'cancelled before training started', false);
      return null;
    }
    const problem = validateJobOptions(row);
    if (problem) {
      await endInTx(tx, row.id, 'failed', 'invalid_job_options', problem, false);
      return null;
    }
    if (dataset.estimated_credits === null) {
      // Nothing to reserve against: end here rather than leave the row waiting forever.
      await endInTx(
        tx,
        row.id,
        'failed',
        'no_estimate',
        `dataset ${dataset.id} has no credit estimate`,
        false,
      );
      return null;
    }
    const amount = reservationAmount(BigInt(dataset.estimated_credits), deps.reservationMarginPercent);
    const result = await reserveCredits(tx, {
      fineTuneId: row.id,
      licenseId: row.license_id,
      amount,
      model: row.base_model,
    });
    if (!result.ok) {
      const why =
        result.reason === 'overage_blocked' ? ' (blocked by an unpaid overage until topped up)' : '';
      await endInTx(
        tx,
        row.id,
        'insufficient_credits',
        result.reason,
        `Insufficient credits${why}: this fine-tune needs ${result.required} credits ` +
          `(estimate ${dataset.estimated_credits} + ${deps.reservationMarginPercent}% margin), ` +
          `the license has ${result.available} available.`,
        false,
      );
      return null;
    }
    const creating = await transitionFineTune(tx, row.id, ['pending'], {
      status: 'creating',
      credits_reserved: amount.toString(),
    });
    return creating ? { row: creating, reservedNow: true } : null;
  });
}

/**
 * Ends a fine-tune that never got a provider job. With a reservation, billing settles it (releases
 * the credits) and notifies; without one there is nothing to settle, so we notify here.
 */
async function endBeforeProvider(
  db: Executor,
  id: string,
  status: 'failed' | 'cancelled',
  code: string | null,
  message: string,
  reserved: boolean,
): Promise<void> {
  await inTransaction(db, (tx) => endInTx(tx, id, status, code, message, reserved));
}

async function endInTx(
  tx: Executor,
  id: string,
  status: 'failed' | 'cancelled' | 'insufficient_credits',
  code: string | null,
  message: string,
  reserved: boolean,
): Promise<void> {
  const ended = await transitionFineTune(tx, id, NOT_STARTED, {
    status,
    error_code: code,
    error_message: message,
    finished_at: new Date(),
    ...(reserved ? {} : { settled_at: new Date() }),
  });
  if (!ended) return;
  if (reserved) {
    await writeOutbox(tx, settleMessage(ended));
  } else {
    await queueOutcomeNotifications(tx, ended);
  }
}

/**
 * Stores the provider job id and queues the first poll, once. A job that has already ended (adopted
 * after a lost response) is polled at once: the poller records endings and queues settlement.
 */
async function record(deps: TrainerDeps, fineTune: FineTune, job: ProviderJob): Promise<void> {
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
      pollMessage(fineTune, 'scheduled', scheduledPollJobId(fineTune.id, updated.poll_count), delayMs),
    );
  });
}

/** 401/403 from the provider (the profile keeps the SDK error, with its status, as `cause`). */
function isAuthError(err: Error): boolean {
  const status = (err as Error & { cause?: { status?: unknown } }).cause?.status;
  return status === 401 || status === 403;
}
