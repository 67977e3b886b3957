import { scheduledPollJobId, scheduledPollMessage } from '@tuneline/contracts';
import {
  type Db,
  endFineTune,
  type FineTuneRecord,
  type FineTuneStatus,
  fineTuneStatusFromProvider,
  insertCheckpoints,
  insertProviderEvents,
  inTransaction,
  isTerminalStatus,
  lockFineTune,
  recordPoll,
  type TerminalStatus,
  writeOutbox,
} from '@tuneline/db';
import type { PollerProvider, ProviderJob } from './provider.ts';
import { applyRetention } from './retention.ts';
import { nextPollDelayMs, type PollScheduleConfig } from './schedule.ts';

const fromUnix = (seconds: number | null | undefined): Date | null =>
  typeof seconds === 'number' ? new Date(seconds * 1000) : null;

/** Whether a snapshot says anything the row does not already know. */
export function snapshotDiffers(row: FineTuneRecord, job: ProviderJob): boolean {
  if (fineTuneStatusFromProvider(job.status) !== row.status) return true;
  const finish = fromUnix(job.estimated_finish)?.getTime() ?? null;
  return finish !== (row.estimatedFinish?.getTime() ?? null);
}

export interface ApplyOptions {
  /** Fetch events and checkpoints even if nothing changed (webhook and cancel polls). */
  forceDetails?: boolean;
  /** Schedule the next poll if this poll is the chain link with this job id. */
  chainJobId?: string;
  schedule: PollScheduleConfig;
  /** Where a failed file deletion after training is reported. */
  log?: { warn(obj: object, msg: string): void };
}

export interface ApplyResult {
  status: FineTuneStatus;
  changed: boolean;
  terminal: boolean;
  nextPollDelayMs: number | null;
}

/**
 * Stores what the provider says about one job: status, events, checkpoints; on an ending the trained
 * tokens, model, error and finish time plus the `billing-settle` message, in one transaction. Runs
 * with the row locked and its expected state in every UPDATE, so applying the same snapshot twice (two
 * polls, a webhook and a sweep) changes the row once.
 */
export async function applyJobSnapshot(
  db: Db,
  provider: PollerProvider,
  fineTune: FineTuneRecord,
  job: ProviderJob,
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const status = fineTuneStatusFromProvider(job.status);
  const terminal = isTerminalStatus(status);
  const changed = snapshotDiffers(fineTune, job);
  // Events and checkpoints cost a call each: only fetched when something happened.
  const details = changed || terminal || opts.forceDetails;
  const events = details ? (await provider.listEvents(job.id, { limit: 100 })).data : [];
  const checkpoints = details ? (await provider.listCheckpoints(job.id, { limit: 100 })).data : [];

  const result = await inTransaction(db, async (tx): Promise<ApplyResult & { endedHere?: boolean }> => {
    const row = await lockFineTune(tx, fineTune.id);
    if (!row || isTerminalStatus(row.status)) {
      return { status: row?.status ?? status, changed: false, terminal: true, nextPollDelayMs: null };
    }
    await insertProviderEvents(
      tx,
      row.id,
      events.map((e) => ({
        id: e.id,
        createdAt: new Date(e.created_at * 1000),
        level: e.level,
        message: e.message,
        type: e.type ?? null,
        data: e.data ?? null,
      })),
    );
    await insertCheckpoints(
      tx,
      row.id,
      checkpoints.map((c) => ({
        id: c.id,
        step: c.step_number,
        fineTunedModelCheckpoint: c.fine_tuned_model_checkpoint,
        metrics: c.metrics ?? {},
        createdAt: new Date(c.created_at * 1000),
      })),
    );

    if (terminal) {
      // The lifecycle ends it and queues its settlement in this transaction.
      await endFineTune(tx, row.id, {
        by: 'provider',
        status: status as TerminalStatus,
        trainedTokens: typeof job.trained_tokens === 'number' ? job.trained_tokens : null,
        fineTunedModel: job.fine_tuned_model ?? null,
        errorCode: job.error?.code ?? null,
        errorMessage: job.error?.message ?? null,
        finishedAt: fromUnix(job.finished_at) ?? new Date(),
        polledAt: new Date(),
      });
      return { status, changed: true, terminal: true, nextPollDelayMs: null, endedHere: true };
    }

    const isChainLink =
      opts.chainJobId !== undefined && opts.chainJobId === scheduledPollJobId(row.id, row.pollCount);
    const unchangedPolls = changed ? 0 : isChainLink ? row.unchangedPolls + 1 : row.unchangedPolls;
    const estimatedFinish = fromUnix(job.estimated_finish);
    const delay = isChainLink ? nextPollDelayMs({ unchangedPolls, estimatedFinish }, opts.schedule) : null;
    const nextPoll =
      delay === null ? undefined : { pollCount: row.pollCount + 1, at: new Date(Date.now() + delay) };
    await recordPoll(tx, row.id, {
      status,
      estimatedFinish,
      unchangedPolls,
      ...(nextPoll ? { nextPoll } : {}),
    });
    if (nextPoll) {
      await writeOutbox(
        tx,
        scheduledPollMessage({
          fineTuneId: row.id,
          correlationId: row.correlationId,
          pollCount: nextPoll.pollCount,
          delayMs: delay ?? 0,
        }),
      );
    }
    return { status, changed, terminal: false, nextPollDelayMs: delay };
  });
  if (!result.endedHere) return result;
  // Retention: the dataset's files go once training is over (unless the license keeps them).
  await applyRetention(db, provider, fineTune.id).catch((err: unknown) =>
    opts.log?.warn({ err: String(err) }, 'could not delete the provider files after training'),
  );
  const { endedHere: _ended, ...applied } = result;
  return applied;
}

/**
 * The provider says the job does not exist (a 404 for a job that is gone): end the fine-tune with the
 * provider's message; the lifecycle queues settlement, so the credits are released.
 */
export async function endWithProviderError(
  db: Db,
  fineTune: FineTuneRecord,
  message: string,
): Promise<boolean> {
  const ended = await inTransaction(db, (tx) =>
    endFineTune(tx, fineTune.id, {
      by: 'provider',
      status: 'failed',
      errorCode: 'provider_error',
      errorMessage: message,
    }),
  );
  return ended !== undefined;
}
