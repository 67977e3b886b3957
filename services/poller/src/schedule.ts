/**
 * When to poll a running fine-tune next. Starts at the minimum interval after a change and doubles
 * with every poll that saw nothing new, up to the configured interval; a known `estimated_finish`
 * brings the next poll forward to just after it.
 */
export interface PollScheduleConfig {
  /** The longest gap between two polls (the usual product default: 20 minutes). */
  intervalMs: number;
  /** The shortest gap (right after a change, or near the estimated finish). */
  minIntervalMs: number;
  /** How long after `estimated_finish` to look. */
  finishGraceMs: number;
}

export function nextPollDelayMs(
  state: { unchangedPolls: number; estimatedFinish: Date | null },
  config: PollScheduleConfig,
  now = Date.now(),
): number {
  const min = Math.min(config.minIntervalMs, config.intervalMs);
  const exponent = Math.min(Math.max(state.unchangedPolls, 0), 30);
  const backedOff = Math.min(min * 2 ** exponent, config.intervalMs);
  if (!state.estimatedFinish) return backedOff;
  const untilFinish = state.estimatedFinish.getTime() - now + config.finishGraceMs;
  if (untilFinish <= 0) return backedOff;
  return Math.min(backedOff, Math.max(min, untilFinish));
}
