import { type MessageInput, type QueueName, queues } from '@tuneline/contracts';
import { Queue } from 'bullmq';
import type { Logger } from './logger.ts';
import { createRedis } from './redis.ts';
import type { Closable } from './service.ts';

/** How often a scheduler is put back by default: after a Redis that lost its data, jobs resume within it. */
const REASSERT_MS = 5 * 60_000;

/**
 * A BullMQ job scheduler that queues `payload` on `queue` every `everyMs` (the re-train check, the
 * lifecycle sweep). Upserting is idempotent, so every replica of the consuming service does it and one
 * scheduler exists; BullMQ makes one job per interval whatever the number of replicas. It is upserted
 * again every `reassertMs`, so it comes back after Redis loses its data. The jobs it queues must be
 * idempotent: a duplicated or late one may run.
 */
export async function startJobScheduler<Q extends QueueName>(opts: {
  queue: Q;
  schedulerId: string;
  payload: MessageInput<Q>;
  redisUrl: string;
  prefix: string;
  everyMs: number;
  log: Logger;
  reassertMs?: number;
}): Promise<Closable> {
  const connection = createRedis(opts.redisUrl, 'producer');
  const def = queues[opts.queue];
  const queue = new Queue(def.name, { connection, prefix: opts.prefix });
  const upsert = () =>
    queue.upsertJobScheduler(
      opts.schedulerId,
      { every: opts.everyMs },
      { name: def.name, data: opts.payload, opts: def.jobOptions },
    );
  await upsert();
  const timer = setInterval(() => {
    upsert().catch((err) =>
      opts.log.warn(
        { err, scheduler: opts.schedulerId },
        'could not re-assert a job scheduler; next try later',
      ),
    );
  }, opts.reassertMs ?? REASSERT_MS);
  timer.unref();
  opts.log.info({ scheduler: opts.schedulerId, everyMs: opts.everyMs }, 'job scheduler set');
  return {
    async close() {
      clearInterval(timer);
      await queue.close();
      connection.disconnect();
    },
  };
}
