// Harm done to a trial while it runs: SIGKILL or SIGTERM workers, delete the trial's queue keys (Redis
// losing its data), terminate the database's backends. Timed by a plan, reproducible by a seed.
import type { Supervisor } from '@tuneline/devstack';
import type { Redis } from 'ioredis';
import { SERVICES, type TrialReport } from './report.ts';

export interface ChaosPlan {
  /** SIGKILL a worker this often (ms); the supervisor restarts it. */
  killEveryMs?: number;
  /** `random`: any worker each time; `each-once`: every service once, in a shuffled order, then stop. */
  killMode?: 'random' | 'each-once';
  /** SIGTERM every service once, in turn, this long apart (a rolling restart under load). */
  terminateEveryMs?: number;
  /** Delete every key of the trial's BullMQ prefix once, this long after the requests were enqueued. */
  flushRedisAfterMs?: number;
  /** Terminate every Postgres backend of the trial's database once, this long after the enqueue. */
  terminateBackendsAfterMs?: number;
}

/** Deletes every key of a BullMQ prefix: what "Redis lost its data" looks like to one deployment. */
export async function deleteQueueKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export interface ChaosContext {
  supervisor: Supervisor;
  seed: number;
  event(what: string): void;
  flushRedis(): Promise<void>;
  terminateBackends(): Promise<void>;
}

export function startChaos(plan: ChaosPlan, ctx: ChaosContext) {
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<unknown>[] = [];
  const terminations: TrialReport['terminations'] = [];
  let kills = 0;
  let random = ctx.seed * 7919 + 1;
  const next = () => {
    random = (random * 48271) % 2147483647;
    return random / 2147483647;
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T;
  const instancesOf = (service: string) =>
    ctx.supervisor.processes.filter((p) => p.service === service).map((p) => p.instance);

  if (plan.killEveryMs) {
    const order = [...SERVICES].sort(() => next() - 0.5);
    const timer = setInterval(() => {
      const service = plan.killMode === 'each-once' ? order.shift() : pick(SERVICES);
      if (!service) return clearInterval(timer);
      const instance = pick(instancesOf(service));
      kills++;
      ctx.supervisor.kill(service, instance);
      ctx.event(`SIGKILL ${service}#${instance}`);
    }, plan.killEveryMs);
    timers.push(timer);
  }
  if (plan.terminateEveryMs) {
    const order = [...SERVICES];
    const timer = setInterval(() => {
      const service = order.shift();
      if (!service) return clearInterval(timer);
      const instance = pick(instancesOf(service));
      ctx.event(`SIGTERM ${service}#${instance}`);
      pending.push(
        ctx.supervisor.terminate(service, instance).then((r) => {
          terminations.push({ service, ms: r.ms, code: r.code });
          ctx.event(`${service}#${instance} exited ${r.code ?? r.signal} after ${r.ms} ms`);
        }),
      );
    }, plan.terminateEveryMs);
    timers.push(timer);
  }
  const once = (afterMs: number | undefined, action: () => Promise<void>) => {
    if (afterMs === undefined) return;
    timers.push(
      setTimeout(() => {
        pending.push(action().catch((err: unknown) => ctx.event(`chaos action failed: ${String(err)}`)));
      }, afterMs),
    );
  };
  once(plan.flushRedisAfterMs, ctx.flushRedis);
  once(plan.terminateBackendsAfterMs, ctx.terminateBackends);

  return {
    terminations,
    get kills() {
      return kills;
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(pending);
    },
  };
}
