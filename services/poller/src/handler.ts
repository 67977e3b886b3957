import type { MessageOf } from '@tuneline/contracts';
import {
  cancelPollMessage,
  getFineTune,
  isTerminalStatus,
  listFollowedFineTunes,
  type OutboxMessage,
  pollMessage,
  scheduledPollJobId,
} from '@tuneline/db';
import { defineStage, type JobContext, PermanentError, type StageDeps } from '@tuneline/runtime';
import { sql } from 'kysely';
import { applyJobSnapshot, endWithProviderError } from './apply.ts';
import type { PollerProvider, ProviderJob } from './provider.ts';
import type { PollScheduleConfig } from './schedule.ts';
import type { Sweeper } from './sweep.ts';

export { applyJobSnapshot } from './apply.ts';
export type { PollerProvider, ProviderJob } from './provider.ts';
export { nextPollDelayMs, type PollScheduleConfig } from './schedule.ts';
export { Sweeper, type SweepStats } from './sweep.ts';
export { startWebhookServer, type WebhookServer } from './webhooks.ts';

export interface PollerDeps extends StageDeps {
  provider: PollerProvider;
  sweeper: Sweeper;
  schedule: PollScheduleConfig;
}

/**
 * Polls of one fine-tune that this process runs at the same time, chained: each starts when the one
 * before it has finished. A webhook poll and a scheduled poll often arrive together; run side by side,
 * both fetched the job, its events and its checkpoints, and the second learned only under the row lock
 * that the first had recorded the ending. Run in turn, the second reads the ending and returns. (Another
 * process may still poll the same fine-tune at once: the row lock keeps that correct, as before.) Keyed
 * by fine-tune id alone: ids are UUIDs, and two pollers in one process that did share one would only
 * take turns.
 */
const pollsInFlight = new Map<string, Promise<void>>();

async function oneAtATime(fineTuneId: string, poll: () => Promise<void>): Promise<void> {
  const before = pollsInFlight.get(fineTuneId);
  const current = before ? before.then(poll) : poll();
  const settled = current.catch(() => {});
  pollsInFlight.set(fineTuneId, settled);
  try {
    await current;
  } finally {
    if (pollsInFlight.get(fineTuneId) === settled) pollsInFlight.delete(fineTuneId);
  }
}

/** Stage 4: consumes `finetune-poll`. Never sleeps: the next poll is a delayed job. */
export const pollerStage = defineStage<'finetune-poll', PollerDeps>({
  queue: 'finetune-poll',
  handle(message, ctx, deps) {
    return oneAtATime(message.fineTuneId, () => pollFineTune(message, ctx, deps));
  },
  async recover({ db, schedule }) {
    // A chain whose next link is long overdue lost its job for good (failed for days, or a
    // reused id): start a new link. Otherwise re-adding the current link collapses with it.
    const staleMs = 2 * Math.max(schedule.intervalMs, 5 * 60_000);
    await db
      .updateTable('fine_tunes')
      .set({ poll_count: sql`poll_count + 1`, next_poll_at: sql`now()` })
      .where('status', 'in', ['validating_files', 'queued', 'running', 'paused'])
      .where('provider_job_id', 'is not', null)
      .where('next_poll_at', '<', new Date(Date.now() - staleMs))
      .execute();
    const rows = await listFollowedFineTunes(db);
    const messages: OutboxMessage[] = [];
    for (const row of rows) {
      const delayMs = row.next_poll_at ? Math.max(0, row.next_poll_at.getTime() - Date.now()) : 0;
      messages.push(pollMessage(row, 'recovery', scheduledPollJobId(row.id, row.poll_count), delayMs));
      if (row.cancel_requested_at) messages.push(cancelPollMessage(row));
    }
    return messages;
  },
});

/** One poll: the provider's view of the job, applied to the row. */
async function pollFineTune(
  message: MessageOf<'finetune-poll'>,
  ctx: JobContext,
  deps: PollerDeps,
): Promise<void> {
  const fineTune = await getFineTune(deps.db, message.fineTuneId);
  if (!fineTune) throw new PermanentError(`fine-tune ${message.fineTuneId} does not exist`);
  if (isTerminalStatus(fineTune.status)) return;
  // No provider job yet: the trainer records it and queues the first poll itself.
  if (!fineTune.provider_job_id) return;

  if (fineTune.cancel_requested_at) {
    try {
      await deps.provider.cancelJob(fineTune.provider_job_id);
      ctx.log.info({ providerJobId: fineTune.provider_job_id }, 'provider job cancelled');
    } catch (err) {
      // A job that already ended cannot be cancelled (4xx): its real ending is read below.
      if (!(err instanceof PermanentError)) throw err;
      ctx.log.info({ err: err.message }, 'provider refused the cancel');
    }
  }
  // Scheduled and recovery polls share list sweeps; webhooks and cancels want this job now.
  const direct = message.reason === 'webhook' || message.reason === 'cancel' || fineTune.cancel_requested_at;
  let job: ProviderJob;
  try {
    job = direct
      ? await deps.provider.retrieveJob(fineTune.provider_job_id)
      : await deps.sweeper.jobState(fineTune.provider_job_id);
  } catch (err) {
    if (!(err instanceof PermanentError)) throw err; // rate limits and outages: the queue retries
    // Only "this job does not exist" ends the fine-tune; a bad key or a refused list call says
    // nothing about this job, so it retries with backoff (fixing the config resumes polling).
    if (providerStatus(err) !== 404) throw new Error(err.message);
    await endWithProviderError(deps.db, fineTune, err.message);
    ctx.log.warn({ err: err.message }, 'provider refused the job: fine-tune ended');
    return;
  }
  const result = await applyJobSnapshot(deps.db, deps.provider, fineTune, job, {
    forceDetails: message.reason === 'webhook' || message.reason === 'cancel',
    chainJobId: ctx.jobId,
    schedule: deps.schedule,
  });
  ctx.log.debug({ reason: message.reason, ...result }, 'polled');
}

/** The HTTP status behind a provider error (the profile keeps the SDK error as `cause`). */
function providerStatus(err: Error): number | undefined {
  const cause = (err as Error & { cause?: { status?: unknown } }).cause;
  return typeof cause?.status === 'number' ? cause.status : undefined;
}
