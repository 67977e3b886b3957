import type { QueueName, ServiceName } from '@tuneline/contracts';
import { createDb, type Db, type OutboxDispatch } from '@tuneline/db';
import { sql } from 'kysely';
import type { z } from 'zod';
import { assertStagesMatchCatalogue } from './catalogue-check.ts';
import { type BaseConfig, ConfigError, loadConfig } from './config.ts';
import { startHealthServer } from './health.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { OutboxPublisher } from './outbox-publisher.ts';
import { Publisher } from './publisher.ts';
import { createRedis } from './redis.ts';
import type { Stage, StageDeps } from './stage.ts';
import { withTimeout } from './timeout.ts';
import { type RunningStage, startStage } from './worker.ts';

export interface ServiceContext<C extends BaseConfig> {
  config: C;
  db: Db;
  log: Logger;
  metrics: Metrics;
}

/**
 * The deps every stage that calls providers starts from (one owner of that wiring): the service's db and
 * log, the provider set `createSet` makes from its config (`createProviderSet` of @tuneline/provider)
 * with each request counted in its metrics, and that set's default profile.
 */
export function providerStageDeps<C extends BaseConfig, S extends { defaultProfile: unknown }>(
  ctx: ServiceContext<C>,
  createSet: (config: C, opts: { onRequest: Metrics['countProviderRequest'] }) => S,
): { db: Db; log: Logger; provider: S['defaultProfile']; providers: S } {
  const providers = createSet(ctx.config, { onRequest: ctx.metrics.countProviderRequest });
  return { db: ctx.db, log: ctx.log, provider: providers.defaultProfile, providers };
}

/** Something `onStarted` opened (a server), closed first on shutdown. */
export interface Closable {
  close(): Promise<void>;
}

export interface StartedServiceContext<C extends BaseConfig, D extends StageDeps> extends ServiceContext<C> {
  deps: D;
  /**
   * Publishes outbox rows this process committed outside a job (a webhook delivery, say) now rather
   * than on the relay timer. Never throws: what fails is left to the relay.
   */
  publishCaptured(rows: readonly OutboxDispatch[]): Promise<void>;
}

export interface RunServiceOptions<C extends BaseConfig, D extends StageDeps> {
  /** Its name in the queue catalogue (each queue names its consumer) and its folder under services/. */
  service: ServiceName;
  /** The stages it runs: exactly one for each queue the catalogue gives it, or it refuses to start. */
  stages: readonly Stage<QueueName, D>[];
  configSchema: z.ZodType<C>;
  /** Builds the stages' dependencies (provider client, mailer…) from the parsed config. */
  makeDeps(ctx: ServiceContext<C>): Promise<D> | D;
  /** Closes what makeDeps opened. */
  closeDeps?(deps: D): Promise<void>;
  /** Starts what runs beside the stages (the poller's webhook endpoint) once they consume. */
  onStarted?(ctx: StartedServiceContext<C, D>): Promise<Closable | undefined> | Closable | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface RunningService {
  port: number;
  stages: RunningStage[];
  /** Readiness off, drain within SHUTDOWN_TIMEOUT_MS, close connections. */
  shutdown(reason: string): Promise<void>;
}

/**
 * What every service's main.ts calls: check its stages against the queue catalogue, parse config
 * once, connect, start health and the stages' workers, and shut down cleanly on SIGTERM/SIGINT
 * (readiness turns 503 first). A catalogue mismatch or a bad setting exits 78 with a readable message.
 */
export async function runService<C extends BaseConfig, D extends StageDeps>(
  opts: RunServiceOptions<C, D>,
): Promise<RunningService> {
  const { service } = opts;
  let config: C;
  try {
    assertStagesMatchCatalogue(
      service,
      opts.stages.map((s) => s.queue),
    );
    config = loadConfig(opts.configSchema, opts.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(service, config.LOG_LEVEL);
  const metrics = createMetrics(service);
  const db = createDb(config.DATABASE_URL, {
    max: config.DATABASE_POOL_MAX ?? config.WORKER_CONCURRENCY + 2,
    applicationName: service,
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

  // One outbox publisher per process, whatever the number of its stages.
  const publisher = new Publisher(producerConnection, config.QUEUE_PREFIX);
  const outbox = new OutboxPublisher(db, log, publisher, metrics);
  outbox.startTimer(config.OUTBOX_INTERVAL_MS);
  const stages: RunningStage[] = [];
  for (const stage of opts.stages) {
    stages.push(await startStage(stage, { config, deps, workerConnection, outbox, metrics }));
  }
  const beside = await opts.onStarted?.({
    config,
    db,
    log,
    metrics,
    deps,
    publishCaptured: (rows) => outbox.publishCaptured(rows),
  });
  log.info({ queues: opts.stages.map((s) => s.queue) }, 'service started');

  let shutdownPromise: Promise<void> | null = null;
  const shutdown = (reason: string) => {
    shutdownPromise ??= (async () => {
      shuttingDown = true;
      log.info({ reason, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down');
      await beside?.close();
      outbox.stopTimer();
      const closed = await Promise.all(stages.map((s) => s.close(config.SHUTDOWN_TIMEOUT_MS)));
      const drained = closed.every((c) => c.drained);
      if (!drained) log.warn('shutdown limit reached: in-flight jobs released to other workers');
      await outbox.close();
      await publisher.close();
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
  return { port: health.port, stages, shutdown };
}
