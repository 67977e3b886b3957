import { RETRAIN_SCHEDULER_ID, retrainSchedulerPayload } from '@tuneline/contracts';
import { type Closable, type Logger, startJobScheduler } from '@tuneline/runtime';

/**
 * The job scheduler that queues a check of every enabled training profile every `everyMs`, on every
 * dataset-builder replica (one scheduler results). The checks are idempotent (a version is a key), so a
 * duplicated or late check starts nothing twice.
 */
export function startRetrainScheduler(opts: {
  redisUrl: string;
  prefix: string;
  everyMs: number;
  log: Logger;
  /** How often to put the scheduler back (default 5 minutes). */
  reassertMs?: number;
}): Promise<Closable> {
  return startJobScheduler({
    ...opts,
    queue: 'retrain-check',
    schedulerId: RETRAIN_SCHEDULER_ID,
    payload: retrainSchedulerPayload(),
  });
}
