import type { FineTuneStatus } from '../schema.ts';

/**
 * The fine-tune statuses in named sets, one definition each. Every stage, repository and the API
 * asks these (or their predicates) instead of listing statuses of its own.
 *
 *   pending ─▶ creating ─▶ validating_files ─▶ queued ─▶ running (⇄ paused) ─▶ succeeded
 *      │          │              └──────────────┴──────────┴─────────────────▶ failed / cancelled
 *      └──────────┴─▶ failed / cancelled / insufficient_credits (before a provider job exists)
 */

/** Waiting on the trainer: credits not reserved yet (`pending`) or the provider job being created. */
export const WAITING_FOR_TRAINER = ['pending', 'creating'] as const satisfies readonly FineTuneStatus[];

/** Alive at the provider: what the poller follows. */
export const AT_PROVIDER = [
  'validating_files',
  'queued',
  'running',
  'paused',
] as const satisfies readonly FineTuneStatus[];

/** Finished: nothing moves the status again; billing settles it once. */
export const TERMINAL_STATUSES = [
  'succeeded',
  'failed',
  'cancelled',
  'insufficient_credits',
] as const satisfies readonly FineTuneStatus[];

/** What an ending the provider reports may move from (the trainer's `creating`, or alive at the provider). */
export const ENDABLE_BY_PROVIDER = ['creating', ...AT_PROVIDER] as const satisfies readonly FineTuneStatus[];

/** The statuses a provider job can report that we keep as they are. */
const PROVIDER_STATUSES: readonly FineTuneStatus[] = [...AT_PROVIDER, 'succeeded', 'failed', 'cancelled'];

const isIn = (set: readonly string[], status: string) => set.includes(status);

export function isTerminalStatus(status: string): boolean {
  return isIn(TERMINAL_STATUSES, status);
}

export function isWaitingForTrainer(status: string): boolean {
  return isIn(WAITING_FOR_TRAINER, status);
}

export function isAtProvider(status: string): boolean {
  return isIn(AT_PROVIDER, status);
}

/** The provider's job status as ours; `cancelling` and anything newer count as running until it settles. */
export function fineTuneStatusFromProvider(status: string): FineTuneStatus {
  return isIn(PROVIDER_STATUSES, status) ? (status as FineTuneStatus) : 'running';
}
