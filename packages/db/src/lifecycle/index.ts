import {
  billingSettleMessage,
  cancelPollMessage,
  filesUploadMessage,
  fineTuneCreateMessage,
  formatZodError,
  type Hyperparameters,
  jobOptionsSchema,
  parseEmailList,
} from '@tuneline/contracts';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { DatasetRecord } from '../repositories/datasets.ts';
import { markDatasetUploading } from '../repositories/datasets.ts';
import {
  type FineTuneRecord,
  getFineTune,
  lockFineTune,
  toFineTuneRecord,
  transitionFineTune,
} from '../repositories/fine-tunes.ts';
import { inTransaction, writeOutbox } from '../repositories/outbox.ts';
import { queueOutcome } from './migration.ts';
import {
  ENDABLE_BY_PROVIDER,
  isTerminalStatus,
  type TERMINAL_STATUSES,
  WAITING_FOR_TRAINER,
} from './statuses.ts';

export * from './deployment-outcome.ts';
export * from './evaluation.ts';
export * from './ids.ts';
export * from './migration.ts';
export * from './promote-deploy.ts';
export * from './statuses.ts';
export * from './version-promotion.ts';

/**
 * The fine-tune lifecycle: how a fine-tune is born from a dataset, how a dataset's upload starts, and
 * how a fine-tune ends, each with exactly the message that must follow, committed in the caller's
 * transaction. Stages and the API call these; nothing else writes a fine-tune's birth or ending.
 */

// ---------------------------------------------------------------------------------------------------
// Job options

/** Job options as a fine-tune stores them: the e-mail list parsed into addresses. */
export interface FineTuneOptions {
  description: string;
  notifyEmails: string[];
  /** Defaults to the dataset's short hash. */
  suffix?: string;
  hyperparameters: Hyperparameters;
  /** `evaluate` and `evaluation.maxExamples` of the request (held-out evaluation after training). */
  evaluation?: { evaluate: boolean; maxExamples: number };
  /** The alias the model should take when the license activates it (issue 21.1). */
  alias?: string;
}

export type CheckedJobOptions = { ok: true; options: FineTuneOptions } | { ok: false; message: string };

/** Checks job options with the contracts' `jobOptionsSchema`, the one validator of them. */
export function checkJobOptions(input: unknown): CheckedJobOptions {
  const parsed = jobOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) return { ok: false, message: formatZodError(parsed.error) };
  const emails = parseEmailList(parsed.data.notifyEmails);
  // The schema has already checked the list with this very parser.
  if (!emails.ok) return { ok: false, message: `notifyEmails: ${emails.message}` };
  const { description, suffix, hyperparameters, evaluate, evaluation, alias } = parsed.data;
  return {
    ok: true,
    options: {
      description,
      notifyEmails: emails.emails,
      hyperparameters,
      ...(suffix ? { suffix } : {}),
      evaluation: { evaluate, maxExamples: evaluation.maxExamples },
      ...(alias ? { alias } : {}),
    },
  };
}

/** Checks the options stored on a fine-tune once more (before money moves); the problem, if any. */
export function storedJobOptionsProblem(
  fineTune: Pick<FineTuneRecord, 'description' | 'notifyEmails' | 'suffix' | 'hyperparameters'>,
): string | null {
  const checked = checkJobOptions({
    description: fineTune.description,
    notifyEmails: fineTune.notifyEmails.join(';'),
    suffix: fineTune.suffix,
    hyperparameters: fineTune.hyperparameters,
  });
  return checked.ok ? null : checked.message;
}

// ---------------------------------------------------------------------------------------------------
// Birth

export interface NewFineTune {
  /** Fixed id (`autoTrainFineTuneId`, `requestedFineTuneId`): a second call returns the first row. */
  id?: string;
  options: FineTuneOptions;
  /** From the base model catalogue, passed in so this package stays free of catalogue code. */
  creditsPerMillionTokens: bigint;
  /** A fine-tune can be born failed (its upload failed, bad options), so the reason is on a row users see. */
  failure?: { code: string; message: string };
}

/**
 * Creates the fine-tune of a dataset and queues what follows: the trainer's `finetune-create`, or,
 * for one born failed, its outcome notifications (nothing was reserved, so it is settled at birth).
 * With a fixed id it is idempotent: a second call returns the existing row, `created: false`, and
 * queues nothing.
 */
export async function createFineTune(
  tx: Executor,
  dataset: Pick<DatasetRecord, 'id' | 'licenseId' | 'correlationId' | 'baseModel' | 'shortHash'> &
    Partial<Pick<DatasetRecord, 'provider'>>,
  fineTune: NewFineTune,
): Promise<{ fineTune: FineTuneRecord; created: boolean }> {
  const suffix = fineTune.options.suffix ?? dataset.shortHash;
  if (!suffix) throw new Error(`dataset ${dataset.id} has no short hash to use as the default suffix`);
  const { failure } = fineTune;
  const inserted = await tx
    .insertInto('fine_tunes')
    .values({
      ...(fineTune.id ? { id: fineTune.id } : {}),
      license_id: dataset.licenseId,
      dataset_id: dataset.id,
      correlation_id: dataset.correlationId,
      base_model: dataset.baseModel,
      provider: dataset.provider ?? null,
      description: fineTune.options.description,
      notify_emails: fineTune.options.notifyEmails,
      suffix,
      hyperparameters: JSON.stringify(fineTune.options.hyperparameters ?? 'auto'),
      credits_per_million_tokens: fineTune.creditsPerMillionTokens.toString(),
      ...(fineTune.options.evaluation
        ? { evaluation_options: JSON.stringify(fineTune.options.evaluation) }
        : {}),
      alias: fineTune.options.alias ?? null,
      ...(failure
        ? {
            status: 'failed' as const,
            error_code: failure.code,
            error_message: failure.message,
            finished_at: new Date(),
            settled_at: new Date(),
          }
        : {}),
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) {
    const created = toFineTuneRecord(inserted);
    if (failure) await queueOutcome(tx, created);
    else
      await writeOutbox(
        tx,
        fineTuneCreateMessage({ fineTuneId: created.id, correlationId: created.correlationId }),
      );
    return { fineTune: created, created: true };
  }
  if (!fineTune.id) throw new Error('fine-tune insert returned nothing');
  const existing = await getFineTune(tx, fineTune.id);
  if (!existing) throw new Error(`fine-tune ${fineTune.id} neither inserted nor found`);
  return { fineTune: existing, created: false };
}

// ---------------------------------------------------------------------------------------------------
// Upload

/**
 * `ready → uploading`, by the uploader as it starts. True when this call moved it: no earlier attempt
 * can have uploaded a file then.
 */
export function startUpload(tx: Executor, datasetId: string): Promise<boolean> {
  return markDatasetUploading(tx, datasetId);
}

/**
 * `ready → uploading` with the uploader's `files-upload` message, in one transaction: should Redis lose
 * the job, the uploader's recovery finds the row again. False when the dataset was not `ready`.
 */
export function requestUpload(
  db: Executor,
  dataset: Pick<DatasetRecord, 'id' | 'correlationId'>,
): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    if (!(await startUpload(tx, dataset.id))) return false;
    await writeOutbox(
      tx,
      filesUploadMessage({ datasetId: dataset.id, correlationId: dataset.correlationId }),
    );
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------
// Ending

export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export interface FineTuneEnding {
  /**
   * Who ends it: the trainer before a provider job exists (from `pending`/`creating`), or the provider
   * (a terminal job status, or a job it says is gone; from `creating` or alive at the provider).
   */
  by: 'trainer' | 'provider';
  status: TerminalStatus;
  errorCode?: string | null;
  errorMessage?: string | null;
  /** Default now. */
  finishedAt?: Date;
  trainedTokens?: number | null;
  fineTunedModel?: string | null;
  /** Set when a poll brought the ending. */
  polledAt?: Date;
}

/**
 * Ends a fine-tune (if it is still where `by` says) and queues exactly what follows. Billing's
 * `billing-settle` (it charges what the provider trained or releases the reservation, then notifies)
 * for every ending the provider reports, and for one the trainer reaches holding a reservation. One the
 * trainer reaches before reserving anything has nothing to settle: it is marked settled and its
 * outcome notifications are queued here. Returns the ended fine-tune, or undefined when it had already
 * moved on (a repeat changes nothing).
 */
export async function endFineTune(
  tx: Executor,
  id: string,
  ending: FineTuneEnding,
): Promise<FineTuneRecord | undefined> {
  const ended = await transitionFineTune(
    tx,
    id,
    ending.by === 'trainer' ? WAITING_FOR_TRAINER : ENDABLE_BY_PROVIDER,
    {
      status: ending.status,
      error_code: ending.errorCode ?? null,
      error_message: ending.errorMessage ?? null,
      finished_at: ending.finishedAt ?? new Date(),
      estimated_finish: null,
      next_poll_at: null,
      ...(ending.trainedTokens !== undefined ? { trained_tokens: ending.trainedTokens } : {}),
      ...(ending.fineTunedModel !== undefined ? { fine_tuned_model: ending.fineTunedModel } : {}),
      ...(ending.polledAt ? { last_polled_at: ending.polledAt } : {}),
      ...(ending.by === 'trainer'
        ? { settled_at: sql<Date | null>`CASE WHEN credits_reserved IS NULL THEN now() END` }
        : {}),
    },
  );
  if (!ended) return undefined;
  if (ended.settledAt !== null) {
    await queueOutcome(tx, ended);
  } else {
    await writeOutbox(tx, billingSettleMessage({ fineTuneId: ended.id, correlationId: ended.correlationId }));
  }
  return ended;
}

// ---------------------------------------------------------------------------------------------------
// Cancellation

export type CancelResult =
  | { ok: true; fineTune: FineTuneRecord }
  | { ok: false; reason: 'not_found' | 'already_finished'; fineTune?: FineTuneRecord };

/**
 * Asks for a fine-tune to be cancelled: records the request and queues a poll with reason `cancel`,
 * which cancels the provider job (the trainer honours the flag if no provider job exists yet).
 * Asking twice is harmless.
 */
export async function requestCancel(db: Executor, fineTuneId: string): Promise<CancelResult> {
  return inTransaction(db, async (tx): Promise<CancelResult> => {
    const row = await lockFineTune(tx, fineTuneId);
    if (!row) return { ok: false, reason: 'not_found' };
    if (isTerminalStatus(row.status)) return { ok: false, reason: 'already_finished', fineTune: row };
    const updated =
      row.cancelRequestedAt === null
        ? await transitionFineTune(tx, fineTuneId, [row.status], { cancel_requested_at: new Date() })
        : row;
    if (!updated) return { ok: false, reason: 'already_finished', fineTune: row };
    await writeOutbox(
      tx,
      cancelPollMessage({ fineTuneId: updated.id, correlationId: updated.correlationId }),
    );
    return { ok: true, fineTune: updated };
  });
}
