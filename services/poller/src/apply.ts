import { billingSettleMessage, scheduledPollJobId, scheduledPollMessage } from '@tuneline/contracts';
import {
  type Db,
  type FineTune,
  type FineTuneStatus,
  fineTuneStatusFromProvider,
  insertCheckpoints,
  insertProviderEvents,
  inTransaction,
  isTerminalStatus,
  lockFineTune,
  transitionFineTune,
  writeOutbox,
} from '@tuneline/db';
import { sql } from 'kysely';
import type { PollerProvider, ProviderJob } from './provider.ts';
import { nextPollDelayMs, type PollScheduleConfig } from './schedule.ts';

const ALIVE: FineTuneStatus[] = ['creating', 'validating_files', 'queued', 'running', 'paused'];
const fromUnix = (seconds: number | null | undefined): Date | null =>
  typeof seconds === 'number' ? new Date(seconds * 1000) : null;

/** Whether a snapshot says anything the row does not already know. */
export function snapshotDiffers(row: FineTune, job: ProviderJob): boolean {
  if (fineTuneStatusFromProvider(job.status) !== row.status) return true;
  const finish = fromUnix(job.estimated_finish)?.getTime() ?? null;
  return finish !== (row.estimated_finish?.getTime() ?? null);
}

export interface ApplyOptions {
  /** Fetch events and checkpoints even if nothing changed (webhook and cancel polls). */
  forceDetails?: boolean;
  /** Schedule the next poll if this poll is the chain link with this job id. */
  chainJobId?: string;
  schedule: PollScheduleConfig;
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
  fineTune: FineTune,
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

  return inTransaction(db, async (tx) => {
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
      const ended = await transitionFineTune(tx, row.id, ALIVE, {
        status,
        trained_tokens: typeof job.trained_tokens === 'number' ? job.trained_tokens : null,
        fine_tuned_model: job.fine_tuned_model ?? null,
        error_code: job.error?.code ?? null,
        error_message: job.error?.message ?? null,
        finished_at: fromUnix(job.finished_at) ?? new Date(),
        estimated_finish: null,
        next_poll_at: null,
        last_polled_at: new Date(),
      });
      if (ended) {
        await writeOutbox(
          tx,
          billingSettleMessage({ fineTuneId: row.id, correlationId: row.correlation_id }),
        );
      }
      return { status, changed: true, terminal: true, nextPollDelayMs: null };
    }

    const isChainLink =
      opts.chainJobId !== undefined && opts.chainJobId === scheduledPollJobId(row.id, row.poll_count);
    const unchangedPolls = changed ? 0 : isChainLink ? row.unchanged_polls + 1 : row.unchanged_polls;
    const estimatedFinish = fromUnix(job.estimated_finish);
    let delay: number | null = null;
    if (isChainLink) delay = nextPollDelayMs({ unchangedPolls, estimatedFinish }, opts.schedule);
    await tx
      .updateTable('fine_tunes')
      .set({
        status,
        estimated_finish: estimatedFinish,
        unchanged_polls: unchangedPolls,
        last_polled_at: new Date(),
        ...(delay !== null
          ? { poll_count: row.poll_count + 1, next_poll_at: new Date(Date.now() + delay) }
          : {}),
        updated_at: sql`now()`,
      })
      .where('id', '=', row.id)
      .execute();
    if (delay !== null) {
      await writeOutbox(
        tx,
        scheduledPollMessage({
          fineTuneId: row.id,
          correlationId: row.correlation_id,
          pollCount: row.poll_count + 1,
          delayMs: delay,
        }),
      );
    }
    return { status, changed, terminal: false, nextPollDelayMs: delay };
  });
}

/**
 * The provider refused to tell us about the job for good (a 4xx such as 404 for a job that is gone):
 * end the fine-tune with the provider's message and queue settlement, so the credits are released.
 */
export async function endWithProviderError(db: Db, fineTune: FineTune, message: string): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const ended = await transitionFineTune(tx, fineTune.id, ALIVE, {
      status: 'failed',
      error_code: 'provider_error',
      error_message: message,
      finished_at: new Date(),
      estimated_finish: null,
      next_poll_at: null,
    });
    if (!ended) return false;
    await writeOutbox(
      tx,
      billingSettleMessage({ fineTuneId: ended.id, correlationId: ended.correlation_id }),
    );
    return true;
  });
}
