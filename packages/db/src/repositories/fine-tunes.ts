import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import { AT_PROVIDER, TERMINAL_STATUSES, WAITING_FOR_TRAINER } from '../lifecycle/statuses.ts';
import type { FineTuneRow, FineTuneStatus, FineTuneUpdate } from '../schema.ts';
import { bigintOrNull, firstRecord } from './records.ts';

/**
 * Fine-tune rows as the stages and the API read and move them. Every update that moves the state
 * machine carries its expected state in the WHERE clause, so a job that runs twice (or two workers
 * racing) changes the row once. Which state follows which, and what is queued with an ending, is
 * the lifecycle's (lifecycle.ts); this module holds the statements.
 */

/** A `fine_tunes` row: camelCase, bigint columns as bigint, json columns parsed. */
export interface FineTuneRecord {
  id: string;
  licenseId: string;
  datasetId: string;
  correlationId: string;
  status: FineTuneStatus;
  baseModel: string;
  /** null: the deployment's default provider. */
  provider: string | null;
  /** When the license discarded it; null: not discarded. */
  discardedAt: Date | null;
  description: string;
  /** Already parsed and validated recipients. */
  notifyEmails: string[];
  suffix: string;
  hyperparameters: unknown;
  /** Credits per 1M trained tokens, fixed at creation from the base model catalogue. */
  creditsPerMillionTokens: bigint;
  providerJobId: string | null;
  fineTunedModel: string | null;
  trainedTokens: bigint | null;
  creditsReserved: bigint | null;
  creditsCharged: bigint | null;
  errorCode: string | null;
  errorMessage: string | null;
  estimatedFinish: Date | null;
  nextPollAt: Date | null;
  pollCount: number;
  unchangedPolls: number;
  lastPolledAt: Date | null;
  cancelRequestedAt: Date | null;
  finishedAt: Date | null;
  settledAt: Date | null;
  available: boolean;
  active: boolean;
  /** The alias the request asked this model to take (pointed on activation), if any. */
  alias: string | null;
  /** The name its provider serves it under once deployed (Azure's deployment name), else null. */
  deploymentName: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export function toFineTuneRecord(row: FineTuneRow): FineTuneRecord {
  return {
    id: row.id,
    licenseId: row.license_id,
    datasetId: row.dataset_id,
    correlationId: row.correlation_id,
    status: row.status,
    baseModel: row.base_model,
    provider: row.provider,
    discardedAt: row.discarded_at,
    description: row.description,
    notifyEmails: row.notify_emails,
    suffix: row.suffix,
    hyperparameters: row.hyperparameters,
    creditsPerMillionTokens: BigInt(row.credits_per_million_tokens),
    providerJobId: row.provider_job_id,
    fineTunedModel: row.fine_tuned_model,
    trainedTokens: bigintOrNull(row.trained_tokens),
    creditsReserved: bigintOrNull(row.credits_reserved),
    creditsCharged: bigintOrNull(row.credits_charged),
    errorCode: row.error_code,
    errorMessage: row.error_message,
    estimatedFinish: row.estimated_finish,
    nextPollAt: row.next_poll_at,
    pollCount: row.poll_count,
    unchangedPolls: row.unchanged_polls,
    lastPolledAt: row.last_polled_at,
    cancelRequestedAt: row.cancel_requested_at,
    finishedAt: row.finished_at,
    settledAt: row.settled_at,
    available: row.available,
    active: row.active,
    alias: row.alias,
    deploymentName: row.deployment_name,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Every column of `fine_tunes`, as a select to narrow. */
const fineTunes = (db: Executor) => db.selectFrom('fine_tunes').selectAll();

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

export async function getFineTune(db: Executor, id: string): Promise<FineTuneRecord | undefined> {
  return firstRecord(fineTunes(db).where('id', '=', id), toFineTuneRecord);
}

/** Reads the row and locks it until the transaction ends: state changes are serialised per fine-tune. */
export async function lockFineTune(tx: Executor, id: string): Promise<FineTuneRecord | undefined> {
  return firstRecord(fineTunes(tx).where('id', '=', id).forUpdate(), toFineTuneRecord);
}

export async function findFineTuneByProviderJob(
  db: Executor,
  providerJobId: string,
): Promise<FineTuneRecord | undefined> {
  return firstRecord(fineTunes(db).where('provider_job_id', '=', providerJobId), toFineTuneRecord);
}

export async function findFineTunesByDataset(db: Executor, datasetId: string): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db).where('dataset_id', '=', datasetId).execute();
  return rows.map(toFineTuneRecord);
}

/** The fine-tunes of a license, newest first (the hub's list). */
export async function listFineTunes(db: Executor, licenseId: string, limit = 500): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db)
    .where('license_id', '=', licenseId)
    .orderBy('created_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toFineTuneRecord);
}

/** The active fine-tuned models of a license, newest first: what a model configurator offers. */
export async function listActiveFineTunes(db: Executor, licenseId: string): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db)
    .where('license_id', '=', licenseId)
    .where('active', '=', true)
    .where('fine_tuned_model', 'is not', null)
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map(toFineTuneRecord);
}

/** The license's active fine-tune serving `model`, if any (another license's model is never found). */
export async function findActiveFineTuneByModel(
  db: Executor,
  licenseId: string,
  model: string,
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    fineTunes(db)
      .where('fine_tuned_model', '=', model)
      .where('license_id', '=', licenseId)
      .where('active', '=', true),
    toFineTuneRecord,
  );
}

/**
 * Offers (or stops offering) a license's model. The license and availability are in the WHERE
 * clause, so nothing else can be switched; undefined when the row is not the license's or not available.
 */
export async function setFineTuneActive(
  db: Executor,
  input: { id: string; licenseId: string; active: boolean },
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    db
      .updateTable('fine_tunes')
      .set({ active: input.active, updated_at: sql`now()` })
      .where('id', '=', input.id)
      .where('license_id', '=', input.licenseId)
      .where('available', '=', true)
      .returningAll(),
    toFineTuneRecord,
  );
}

/**
 * Moves a fine-tune on only if it is still in `from`; returns the updated row or undefined. The
 * lifecycle and the repositories below call it; stages call them.
 */
export async function transitionFineTune(
  tx: Executor,
  id: string,
  from: readonly FineTuneStatus[],
  set: FineTuneUpdate,
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    tx
      .updateTable('fine_tunes')
      .set({ ...set, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('status', 'in', [...from])
      .returningAll(),
    toFineTuneRecord,
  );
}

/** `pending → creating` with the amount just reserved for it. */
export async function markFineTuneCreating(
  tx: Executor,
  id: string,
  creditsReserved: bigint,
): Promise<FineTuneRecord | undefined> {
  return transitionFineTune(tx, id, ['pending'], {
    status: 'creating',
    credits_reserved: creditsReserved.toString(),
  });
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
): Promise<FineTuneRecord | undefined> {
  return firstRecord(
    tx
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
      .where((eb) =>
        eb.or([eb('provider_job_id', 'is', null), eb('provider_job_id', '=', job.providerJobId)]),
      )
      .returningAll(),
    toFineTuneRecord,
  );
}

/** What one poll of a running job learned; `nextPoll` when this poll scheduled the chain's next link. */
export interface PollRecord {
  status: FineTuneStatus;
  estimatedFinish: Date | null;
  unchangedPolls: number;
  nextPoll?: { pollCount: number; at: Date };
}

/** Stores a poll of a job that is still running (the caller holds the row lock). */
export async function recordPoll(tx: Executor, id: string, poll: PollRecord): Promise<void> {
  await tx
    .updateTable('fine_tunes')
    .set({
      status: poll.status,
      estimated_finish: poll.estimatedFinish,
      unchanged_polls: poll.unchangedPolls,
      last_polled_at: new Date(),
      ...(poll.nextPoll ? { poll_count: poll.nextPoll.pollCount, next_poll_at: poll.nextPoll.at } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .execute();
}

/**
 * Poll chains whose next link is overdue by more than `staleMs` lost their job for good (failed for
 * days, or a reused id): each starts a new link, due now. A chain whose link was dead-lettered (it kept
 * failing after the recovery cap) is not restarted: that is for an admin retry. Returns how many were
 * restarted.
 */
export async function restartStalePollChains(db: Executor, staleMs: number): Promise<number> {
  const result = await db
    .updateTable('fine_tunes')
    .set({ poll_count: sql`poll_count + 1`, next_poll_at: sql`now()` })
    .where('status', 'in', AT_PROVIDER)
    .where('provider_job_id', 'is not', null)
    .where('next_poll_at', '<', new Date(Date.now() - staleMs))
    .where(
      sql<boolean>`NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.status = 'dead_lettered'
        AND d.queue = 'finetune-poll' AND d.subject_id = fine_tunes.id::text)`,
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Unfinished fine-tunes that own a provider job, oldest first: what the poller follows. */
export async function listFollowedFineTunes(db: Executor, limit = 10_000): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db)
    .where('status', 'not in', TERMINAL_STATUSES)
    .where('provider_job_id', 'is not', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toFineTuneRecord);
}

/** Fine-tunes waiting on the trainer, oldest first: what its recovery re-drives. */
export async function listFineTunesAwaitingCreation(db: Executor, limit = 10_000): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db)
    .where('status', 'in', WAITING_FOR_TRAINER)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toFineTuneRecord);
}

/** Finished fine-tunes not settled yet, in the order they finished: billing's backlog. */
export async function listFineTunesAwaitingSettlement(
  db: Executor,
  limit = 10_000,
): Promise<FineTuneRecord[]> {
  const rows = await fineTunes(db)
    .where('settled_at', 'is', null)
    .where('status', 'in', TERMINAL_STATUSES)
    .orderBy('finished_at')
    .limit(limit)
    .execute();
  return rows.map(toFineTuneRecord);
}

/**
 * Billing's mark: what was charged, settled now, and (for a success) the model available. Only the
 * first settlement writes it.
 */
export async function recordSettlement(
  tx: Executor,
  id: string,
  settlement: { charged: bigint; available: boolean },
): Promise<boolean> {
  const result = await tx
    .updateTable('fine_tunes')
    .set({
      credits_charged: settlement.charged.toString(),
      settled_at: sql`now()`,
      available: settlement.available,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .where('settled_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}
