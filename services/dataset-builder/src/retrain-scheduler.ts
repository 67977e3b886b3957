import { RETRAIN_SCHEDULER_ID, retrainSchedulerPayload } from '@tuneline/contracts';
import { type Closable, startJobScheduler } from '@tuneline/runtime';

/** Where and how often the shared job scheduler runs (Redis, prefix, interval, re-assert period). */
type ScheduleOptions = Omit<Parameters<typeof startJobScheduler>[0], 'queue' | 'schedulerId' | 'payload'>;

/**
 * The job scheduler that queues a check of every enabled training profile every `everyMs`, on every
 * dataset-builder replica (one scheduler results). The checks are idempotent (a version is a key), so a
 * duplicated or late check starts nothing twice.
 */
export function startRetrainScheduler(opts: ScheduleOptions): Promise<Closable> {
  return startJobScheduler({
    ...opts,
    queue: 'retrain-check',
    schedulerId: RETRAIN_SCHEDULER_ID,
    payload: retrainSchedulerPayload(),
  });
}
