import { createHash } from 'node:crypto';
import { cancelPollMessage } from '@tuneline/contracts';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import {
  type Dataset,
  type FineTune,
  type FineTuneStatus,
  type FineTuneUpdate,
  TERMINAL_FINE_TUNE_STATUSES,
} from '../schema.ts';
import { inTransaction, writeOutbox } from './outbox.ts';

/**
 * Fine-tune rows as the upload, trainer and poller stages read and move them. Every update that moves
 * the state machine carries its expected state in the WHERE clause, so a job that runs twice (or two
 * workers racing) changes the row once.
 */

const TERMINAL: readonly FineTuneStatus[] = TERMINAL_FINE_TUNE_STATUSES;
/** Statuses the provider reports while a job is alive. */
export const PROVIDER_ACTIVE_STATUSES = ['validating_files', 'queued', 'running', 'paused'] as const;

export function isTerminalStatus(status: string): boolean {
  return (TERMINAL as readonly string[]).includes(status);
}

/**
 * A UUID derived from `seed` (SHA-256), formatted as an RFC 9562 version-8 (custom) UUID so it passes
 * `z.uuid()`. The same seed always gives the same id, which makes `INSERT ... ON CONFLICT (id)` idempotent.
 */
export function deterministicUuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    `8${hex.slice(13, 16)}`,
    `${variant}${hex.slice(17, 20)}`,
    hex.slice(20, 32),
  ].join('-');
}

/**
 * The id of the fine-tune an auto-train dataset gets: derived from the dataset id, so however often the
 * uploader runs, one row is created.
 */
export function autoTrainFineTuneId(datasetId: string): string {
  return deterministicUuid(`tuneline/auto-train/${datasetId}`);
}

const PROVIDER_STATUSES: readonly FineTuneStatus[] = [
  'validating_files',
  'queued',
  'running',
  'paused',
  'succeeded',
  'failed',
  'cancelled',
];

/** The provider's job status as ours; `cancelling` and anything newer count as running until it settles. */
export function fineTuneStatusFromProvider(status: string): FineTuneStatus {
  return (PROVIDER_STATUSES as readonly string[]).includes(status) ? (status as FineTuneStatus) : 'running';
}

export interface NewFineTuneOptions {
  /** Fixed id (auto-train uses `autoTrainFineTuneId`); a random one otherwise. */
  id?: string;
  description: string;
  /** Already parsed and validated (see `parseEmailList`). */
  notifyEmails: string[];
  /** Defaults to the dataset's short hash. */
  suffix?: string;
  hyperparameters: unknown;
  /** From the base model catalogue, passed in so this package stays free of catalogue code. */
  creditsPerMillionTokens: bigint;
  /** A fine-tune can be born failed (bad job options), so the failure is on a row users can see. */
  failure?: { code: string; message: string };
}

/**
 * Creates the fine-tune for a dataset. With a fixed id it is idempotent: the second call returns the
 * existing row and `created: false`.
 */
export async function createFineTuneFromDataset(
  tx: Executor,
  dataset: Pick<Dataset, 'id' | 'license_id' | 'correlation_id' | 'base_model' | 'short_hash'>,
  opts: NewFineTuneOptions,
): Promise<{ fineTune: FineTune; created: boolean }> {
  const suffix = opts.suffix ?? dataset.short_hash;
  if (!suffix) throw new Error(`dataset ${dataset.id} has no short hash to use as the default suffix`);
  const inserted = await tx
    .insertInto('fine_tunes')
    .values({
      ...(opts.id ? { id: opts.id } : {}),
      license_id: dataset.license_id,
      dataset_id: dataset.id,
      correlation_id: dataset.correlation_id,
      base_model: dataset.base_model,
      description: opts.description,
      notify_emails: opts.notifyEmails,
      suffix,
      hyperparameters: JSON.stringify(opts.hyperparameters ?? 'auto'),
      credits_per_million_tokens: opts.creditsPerMillionTokens.toString(),
      ...(opts.failure
        ? {
            status: 'failed' as const,
            error_code: opts.failure.code,
            error_message: opts.failure.message,
            finished_at: new Date(),
          }
        : {}),
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { fineTune: inserted, created: true };
  if (!opts.id) throw new Error('fine-tune insert returned nothing');
  const existing = await getFineTune(tx, opts.id);
  if (!existing) throw new Error(`fine-tune ${opts.id} neither inserted nor found`);
  return { fineTune: existing, created: false };
}

export async function getFineTune(db: Executor, id: string): Promise<FineTune | undefined> {
  return db.selectFrom('fine_tunes').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Reads the row and locks it until the transaction ends: state changes are serialised per fine-tune. */
export async function lockFineTune(tx: Executor, id: string): Promise<FineTune | undefined> {
  return tx.selectFrom('fine_tunes').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function findFineTuneByProviderJob(
  db: Executor,
  providerJobId: string,
): Promise<FineTune | undefined> {
  return db
    .selectFrom('fine_tunes')
    .selectAll()
    .where('provider_job_id', '=', providerJobId)
    .executeTakeFirst();
}

export async function findFineTunesByDataset(db: Executor, datasetId: string): Promise<FineTune[]> {
  return db.selectFrom('fine_tunes').selectAll().where('dataset_id', '=', datasetId).execute();
}

/** Moves a fine-tune on only if it is still in `from`; returns the updated row or undefined. */
export async function transitionFineTune(
  tx: Executor,
  id: string,
  from: readonly FineTuneStatus[],
  set: FineTuneUpdate,
): Promise<FineTune | undefined> {
  return tx
    .updateTable('fine_tunes')
    .set({ ...set, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('status', 'in', [...from])
    .returningAll()
    .executeTakeFirst();
}

/**
 * Records the provider job a fine-tune owns. Only fills an empty slot (or confirms the same id), so a
 * second trainer run can never swap in another job.
 */
export async function recordProviderJob(
  tx: Executor,
  id: string,
  job: { providerJobId: string; status: FineTuneStatus; estimatedFinish: Date | null },
  /** When the first poll is due (it is queued with this delay in the same transaction). */
  firstPollDelayMs = 0,
): Promise<FineTune | undefined> {
  return tx
    .updateTable('fine_tunes')
    .set({
      provider_job_id: job.providerJobId,
      status: job.status,
      estimated_finish: job.estimatedFinish,
      next_poll_at: sql`now() + make_interval(secs => ${firstPollDelayMs / 1000})`,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .where('status', '=', 'creating')
    .where((eb) => eb.or([eb('provider_job_id', 'is', null), eb('provider_job_id', '=', job.providerJobId)]))
    .returningAll()
    .executeTakeFirst();
}

export interface ProviderEventRow {
  id: string;
  createdAt: Date;
  level: string;
  message: string;
  type: string | null;
  data: unknown;
}

/** Events are keyed by the provider's id: a second poll that sees them again inserts nothing. */
export async function insertProviderEvents(
  tx: Executor,
  fineTuneId: string,
  events: readonly ProviderEventRow[],
): Promise<number> {
  if (events.length === 0) return 0;
  const result = await tx
    .insertInto('provider_events')
    .values(
      events.map((e) => ({
        id: e.id,
        fine_tune_id: fineTuneId,
        created_at: e.createdAt,
        level: e.level,
        message: e.message,
        type: e.type,
        data: e.data === undefined || e.data === null ? null : JSON.stringify(e.data),
      })),
    )
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

export interface CheckpointRow {
  id: string;
  step: number;
  fineTunedModelCheckpoint: string;
  metrics: unknown;
  createdAt: Date;
}

export async function insertCheckpoints(
  tx: Executor,
  fineTuneId: string,
  checkpoints: readonly CheckpointRow[],
): Promise<number> {
  if (checkpoints.length === 0) return 0;
  const result = await tx
    .insertInto('checkpoints')
    .values(
      checkpoints.map((c) => ({
        id: c.id,
        fine_tune_id: fineTuneId,
        step: c.step,
        fine_tuned_model_checkpoint: c.fineTunedModelCheckpoint,
        metrics: JSON.stringify(c.metrics ?? {}),
        created_at: c.createdAt,
      })),
    )
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

/** Non-terminal fine-tunes that own a provider job: what the poller follows. */
export async function listFollowedFineTunes(db: Executor, limit = 10_000): Promise<FineTune[]> {
  return db
    .selectFrom('fine_tunes')
    .selectAll()
    .where('status', 'not in', [...TERMINAL])
    .where('provider_job_id', 'is not', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
}

/** Fine-tunes waiting on the trainer. */
export async function listFineTunesAwaitingCreation(db: Executor, limit = 10_000): Promise<FineTune[]> {
  return db
    .selectFrom('fine_tunes')
    .selectAll()
    .where('status', 'in', ['pending', 'creating'])
    .orderBy('created_at')
    .limit(limit)
    .execute();
}

export type CancelResult =
  | { ok: true; fineTune: FineTune }
  | { ok: false; reason: 'not_found' | 'already_finished'; fineTune?: FineTune };

/**
 * Asks for a fine-tune to be cancelled: records the request and queues a poll with reason `cancel`,
 * which cancels the provider job (the trainer honours the flag if no provider job exists yet).
 * Asking twice is harmless.
 */
export async function requestCancel(db: Executor, fineTuneId: string): Promise<CancelResult> {
  const run = async (tx: Executor): Promise<CancelResult> => {
    const row = await lockFineTune(tx, fineTuneId);
    if (!row) return { ok: false, reason: 'not_found' };
    if (isTerminalStatus(row.status)) return { ok: false, reason: 'already_finished', fineTune: row };
    const updated =
      row.cancel_requested_at === null
        ? await transitionFineTune(tx, fineTuneId, [row.status], { cancel_requested_at: new Date() })
        : row;
    if (!updated) return { ok: false, reason: 'already_finished', fineTune: row };
    await writeOutbox(
      tx,
      cancelPollMessage({ fineTuneId: updated.id, correlationId: updated.correlation_id }),
    );
    return { ok: true, fineTune: updated };
  };
  return inTransaction(db, run);
}
