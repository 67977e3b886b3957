import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections as BullMQ wants them. Workers block on Redis and must never give up a command
 * (`maxRetriesPerRequest: null`); producers fail fast so a request handler does not hang when
 * Redis is away.
 */
export function createRedis(url: string, role: 'worker' | 'producer', extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    // Back off reconnects to at most 2 s.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    lazyConnect: false,
    ...extra,
  });
}
