import { cancelPollMessage, type MessageOf, scheduledPollMessage } from '@tuneline/contracts';
import {
  getFineTune,
  isTerminalStatus,
  listFollowedFineTunes,
  type OutboxMessage,
  restartStalePollChains,
} from '@tuneline/db';
import { ProviderError, type ProviderErrorKind } from '@tuneline/provider';
import type { JobContext, StageDeps } from '@tuneline/runtime';
import { defineStage, PermanentError, stageFailure } from '@tuneline/runtime';
import { applyJobSnapshot, endWithProviderError } from './apply.ts';
import type { PollerProvider, ProviderJob } from './provider.ts';
import type { PollScheduleConfig } from './schedule.ts';
import type { Sweeper } from './sweep.ts';

export { applyJobSnapshot } from './apply.ts';
export {
  DEPLOYMENT_GONE_REASON,
  type DeploymentDeps,
  type DeploymentManager,
  type DeploymentSweepResult,
  deploymentSweepStage,
  modelDeploymentStage,
  runDeploymentSweep,
} from './deployments.ts';
export type { PollerProvider, ProviderJob } from './provider.ts';
export { nextPollDelayMs, type PollScheduleConfig } from './schedule.ts';
export { Sweeper, type SweepStats } from './sweep.ts';
export { startWebhookServer, type WebhookServer } from './webhooks.ts';

export interface PollerDeps extends StageDeps {
  provider: PollerProvider;
  /**
   * Several providers: the profile for a fine-tune that names one. Such fine-tunes are polled one by
   * one (the sweeper lists the default provider's jobs only).
   */
  providers?: { for(provider: string | null): PollerProvider };
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

/** Answers to a cancel that mean the provider will not cancel (the job already ended, or is gone). */
const REFUSED: readonly ProviderErrorKind[] = ['auth', 'not_found', 'rejected'];

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

/**
 * Stage 4: consumes `finetune-poll`. Never sleeps: the next poll is a delayed job. No provider failure
 * fails a poll at once: a poll only reads, so it retries with backoff (a rate limit pauses the queue),
 * and the one failure that says something about the job, `not_found`, ends the fine-tune.
 */
export const pollerStage = defineStage<'finetune-poll', PollerDeps>({
  queue: 'finetune-poll',
  async handle(message, ctx, deps) {
    try {
      await oneAtATime(message.fineTuneId, () => pollFineTune(message, ctx, deps));
    } catch (err) {
      throw stageFailure(err);
    }
  },
  async recover({ db, schedule }) {
    // A chain whose next link is long overdue lost its job for good (failed for days, or a
    // reused id): start a new link. Otherwise re-adding the current link collapses with it.
    await restartStalePollChains(db, 2 * Math.max(schedule.intervalMs, 5 * 60_000));
    const rows = await listFollowedFineTunes(db);
    const messages: OutboxMessage[] = [];
    for (const row of rows) {
      const delayMs = row.nextPollAt ? Math.max(0, row.nextPollAt.getTime() - Date.now()) : 0;
      const subject = { fineTuneId: row.id, correlationId: row.correlationId };
      messages.push(
        scheduledPollMessage({ ...subject, pollCount: row.pollCount, delayMs, reason: 'recovery' }),
      );
      if (row.cancelRequestedAt) messages.push(cancelPollMessage(subject));
    }
    return messages;
  },
});

/** One poll: the provider's view of the job, applied to the row. */
async function pollFineTune(
  message: MessageOf<'finetune-poll'>,
  ctx: JobContext,
  stageDeps: PollerDeps,
): Promise<void> {
  const fineTune = await getFineTune(stageDeps.db, message.fineTuneId);
  if (!fineTune) throw new PermanentError(`fine-tune ${message.fineTuneId} does not exist`);
  if (isTerminalStatus(fineTune.status)) return;
  // No provider job yet: the trainer records it and queues the first poll itself.
  if (!fineTune.providerJobId) return;
  const named = stageDeps.providers && fineTune.provider !== null;
  // Not configured (any more): a stage failure that retries until the configuration is fixed.
  const deps = named
    ? { ...stageDeps, provider: stageDeps.providers?.for(fineTune.provider) ?? stageDeps.provider }
    : stageDeps;

  if (fineTune.cancelRequestedAt) {
    try {
      await deps.provider.cancelJob(fineTune.providerJobId);
      ctx.log.info({ providerJobId: fineTune.providerJobId }, 'provider job cancelled');
    } catch (err) {
      // A job that already ended cannot be cancelled (a 4xx): its real ending is read below.
      if (!(err instanceof ProviderError && REFUSED.includes(err.kind))) throw err;
      ctx.log.info({ err: err.message }, 'provider refused the cancel');
    }
  }
  // Scheduled and recovery polls share list sweeps; webhooks and cancels want this job now.
  const direct =
    named || message.reason === 'webhook' || message.reason === 'cancel' || fineTune.cancelRequestedAt;
  let job: ProviderJob;
  try {
    job = direct
      ? await deps.provider.retrieveJob(fineTune.providerJobId)
      : await deps.sweeper.jobState(fineTune.providerJobId);
  } catch (err) {
    // Only "this job does not exist" ends the fine-tune; a bad key or a refused list call says
    // nothing about this job, so it retries with backoff (fixing the config resumes polling).
    if (!(err instanceof ProviderError && err.kind === 'not_found')) throw err;
    await endWithProviderError(deps.db, fineTune, err.message);
    ctx.log.warn({ err: err.message }, 'provider refused the job: fine-tune ended');
    return;
  }
  const result = await applyJobSnapshot(deps.db, deps.provider, fineTune, job, {
    forceDetails: message.reason === 'webhook' || message.reason === 'cancel',
    chainJobId: ctx.jobId,
    schedule: deps.schedule,
    log: ctx.log,
  });
  ctx.log.debug({ reason: message.reason, ...result }, 'polled');
}
