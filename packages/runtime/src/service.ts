import type { QueueName } from '@tuneline/contracts';
import { createDb, type Db } from '@tuneline/db';
import { sql } from 'kysely';
import type { z } from 'zod';
import { type BaseConfig, ConfigError, loadConfig } from './config.ts';
import { startHealthServer } from './health.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createRedis } from './redis.ts';
import type { Stage, StageDeps } from './stage.ts';
import { type RunningStage, startStage } from './worker.ts';

export interface ServiceContext<C extends BaseConfig> {
  config: C;
  db: Db;
  log: Logger;
  metrics: Metrics;
}

export interface RunServiceOptions<C extends BaseConfig, D extends StageDeps> {
  stage: Stage<QueueName, D>;
  configSchema: z.ZodType<C>;
  /** Builds the stage's dependencies (provider client, mailer…) from the parsed config. */
  makeDeps(ctx: ServiceContext<C>): Promise<D> | D;
  /** Closes what makeDeps opened. */
  closeDeps?(deps: D): Promise<void>;
  env?: NodeJS.ProcessEnv;
}

export interface RunningService {
  port: number;
  stage: RunningStage;
  /** Readiness off, drain within SHUTDOWN_TIMEOUT_MS, close connections. */
  shutdown(reason: string): Promise<void>;
}

/**
 * What every service's main.ts calls: parse config once, connect, start health and the stage's
 * worker, and shut down cleanly on SIGTERM/SIGINT (readiness turns 503 first).
 */
export async function runService<C extends BaseConfig, D extends StageDeps>(
  opts: RunServiceOptions<C, D>,
): Promise<RunningService> {
  let config: C;
  try {
    config = loadConfig(opts.configSchema, opts.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${opts.stage.service}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(opts.stage.service, config.LOG_LEVEL);
  const metrics = createMetrics(opts.stage.service);
  const db = createDb(config.DATABASE_URL, {
    max: config.DATABASE_POOL_MAX ?? config.WORKER_CONCURRENCY + 2,
    applicationName: opts.stage.service,
  });
  const workerConnection = createRedis(config.REDIS_URL, 'worker');
  const producerConnection = createRedis(config.REDIS_URL, 'worker');
  const probe = createRedis(config.REDIS_URL, 'producer', { retryStrategy: () => 1_000 });
  for (const c of [workerConnection, producerConnection, probe]) {
    c.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  }
  const deps = await opts.makeDeps({ config, db, log, metrics });
  let shuttingDown = false;

  const health = await startHealthServer({
    port: config.HEALTH_PORT,
    registry: metrics.registry,
    ready: async () => {
      const checks: Record<string, string> = {};
      checks.shutdown = shuttingDown ? 'shutting down' : 'ok';
      checks.redis = await withTimeout(probe.ping(), 1_000).then(
        () => 'ok',
        (err: unknown) => `unreachable: ${err instanceof Error ? err.message : String(err)}`,
      );
      checks.postgres = await withTimeout(sql`select 1`.execute(db), 2_000).then(
        () => 'ok',
        (err: unknown) => `unreachable: ${err instanceof Error ? err.message : String(err)}`,
      );
      return { ok: Object.values(checks).every((v) => v === 'ok'), checks };
    },
  });

  log.info({ healthPort: health.port }, 'health server listening');

  const stage = await startStage(opts.stage, { config, deps, workerConnection, producerConnection, metrics });
  log.info({ queue: opts.stage.queue }, 'service started');

  let shutdownPromise: Promise<void> | null = null;
  const shutdown = (reason: string) => {
    shutdownPromise ??= (async () => {
      shuttingDown = true;
      log.info({ reason, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down');
      const { drained } = await stage.close(config.SHUTDOWN_TIMEOUT_MS);
      if (!drained) log.warn('shutdown limit reached: in-flight jobs released to other workers');
      await opts.closeDeps?.(deps);
      await health.close();
      await db.destroy();
      workerConnection.disconnect();
      producerConnection.disconnect();
      probe.disconnect();
      log.info({ drained }, 'stopped');
    })();
    return shutdownPromise;
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      shutdown(signal).then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err: String(err) }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { port: health.port, stage, shutdown };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
