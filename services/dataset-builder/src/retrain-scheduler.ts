import { queues, RETRAIN_SCHEDULER_ID, retrainSchedulerPayload } from '@tuneline/contracts';
import { type Closable, createRedis, type Logger } from '@tuneline/runtime';
import { Queue } from 'bullmq';

/** How often the scheduler is re-asserted: after a Redis that lost its data, checks resume within this. */
const REASSERT_MS = 5 * 60_000;

/**
 * The BullMQ job scheduler that queues a check of every enabled training profile every `everyMs`.
 * Upserting is idempotent, so every dataset-builder replica does it and one scheduler exists; BullMQ
 * makes one job per interval whatever the number of replicas. The checks themselves are idempotent
 * (a version is a key), so a duplicated or late check starts nothing twice.
 */
export async function startRetrainScheduler(opts: {
  redisUrl: string;
  prefix: string;
  everyMs: number;
  log: Logger;
  /** How often to put the scheduler back (default 5 minutes). */
  reassertMs?: number;
}): Promise<Closable> {
  const connection = createRedis(opts.redisUrl, 'producer');
  const def = queues['retrain-check'];
  const queue = new Queue(def.name, { connection, prefix: opts.prefix });
  const upsert = () =>
    queue.upsertJobScheduler(
      RETRAIN_SCHEDULER_ID,
      { every: opts.everyMs },
      { name: def.name, data: retrainSchedulerPayload(), opts: def.jobOptions },
    );
  await upsert();
  const timer = setInterval(() => {
    upsert().catch((err) =>
      opts.log.warn({ err }, 'could not re-assert the re-train scheduler; next try later'),
    );
  }, opts.reassertMs ?? REASSERT_MS);
  timer.unref();
  opts.log.info({ everyMs: opts.everyMs }, 're-train scheduler set');
  return {
    async close() {
      clearInterval(timer);
      await queue.close();
      connection.disconnect();
    },
  };
}
