import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import {
  type Clock,
  FineTuneRequestProducer,
  type MessageInput,
  processClock,
  QUEUE_NAMES,
  type QueueName,
  queues,
} from '@tuneline/contracts';
import type { Catalogue } from '@tuneline/dataset';
import { type Db, relayOutbox } from '@tuneline/db';
import { Publisher } from '@tuneline/runtime';
import { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { makeAuthenticator } from './auth.ts';
import { clearModelsOnWrites, GatewayCaches } from './gateway/cache.ts';
import { GatewayHolder } from './gateway/holds.ts';
import { GatewayMeter } from './gateway/metering.ts';
import { type ApiMetrics, createApiMetrics } from './gateway/metrics.ts';
import { GatewayRateLimiter, type RateLimitSettings } from './gateway/rate-limit.ts';
import { defaultGatewaySettings, type GatewaySettings } from './gateway/settings.ts';
import { GatewaySweeper } from './gateway/sweep.ts';
import { HttpError, installErrorHandler, RouteTable } from './http.ts';
import { buildOpenApiDocument } from './openapi.ts';
import type { ChatProvider } from './provider.ts';
import { registerActivationRoutes } from './routes/activation.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAliasRoutes } from './routes/aliases.ts';
import { registerCreditRoutes } from './routes/credits.ts';
import { registerDatasetRoutes } from './routes/datasets.ts';
import { registerDeadLetterRoutes } from './routes/dead-letters.ts';
import { type ModelDeleter, registerDiscardRoutes } from './routes/discard.ts';
import { registerDocumentRoutes } from './routes/documents.ts';
import { registerEvaluationRoutes } from './routes/evaluation.ts';
import { registerFineTuneRoutes } from './routes/fine-tunes.ts';
import { registerInferenceRoutes } from './routes/inference.ts';
import { registerLifecycleRoutes } from './routes/lifecycle.ts';
import { registerMigrationRoutes } from './routes/migrations.ts';
import { registerPromotionRoutes } from './routes/promotion.ts';
import { registerRequestRoutes } from './routes/requests.ts';
import { registerTrainingProfileRoutes } from './routes/training-profiles.ts';
import { registerStaticPages } from './static.ts';

export const DEFAULT_BODY_LIMIT = 20 * 1024 * 1024;

export interface ApiOptions {
  db: Db;
  /** A producer-style connection (maxRetriesPerRequest: null is fine): enqueues and the dashboard. */
  redis: Redis;
  queuePrefix: string;
  catalogue: Catalogue;
  /** Forwards chat completions; without one, inference answers 503. */
  provider?: ChatProvider;
  /**
   * Per provider name (issue 20.4): a model whose fine-tune names a provider is served by that one, and
   * answers 503 naming it when it is missing. Unset: every call goes to `provider`.
   */
  chatProviders?: ReadonlyMap<string, ChatProvider>;
  /** Ops key from the environment, in addition to admin rows in api_keys. */
  adminKey?: string;
  /** Providers the workers can reach; a request naming another fails at once. Unset: not checked. */
  providers?: readonly string[];
  /** Deletes a discarded fine-tune's model at its provider; unset: discarding only marks the row. */
  deleteModel?: ModelDeleter;
  /**
   * Deployments (issue 20.1): the deployment default provider's kind (fine-tunes naming no provider
   * train and serve there; default `simulator`), and why Azure deployments cannot be made here, when
   * they cannot (activating an Azure model then answers 503 with it).
   */
  deployments?: DeploymentOptions;
  /** Largest accepted request body in bytes (default 20 MB). */
  bodyLimit?: number;
  /** Per-license gateway rate limit (requests and tokens per minute); off when not given. */
  rateLimit?: RateLimitSettings;
  /** A pino logger (fastify's own logging is off without one). */
  logger?: FastifyBaseLogger;
  /** The trainer's RESERVATION_MARGIN_PERCENT, for the credit check before a fine-tune (default 10). */
  reservationMarginPercent?: number;
  /** The one clock the date rules read (issue 21.5); by default the process clock (`TUNELINE_CLOCK_OFFSET_MS`). */
  clock?: Clock;
  /** The gateway's caches, hold commit, prompt count, expiry and retention (defaults: settings.ts). */
  gateway?: Partial<GatewaySettings>;
}

export interface DeploymentOptions {
  defaultProvider: string;
  problem?: string;
}

/** What route modules share. */
export interface ApiDeps {
  deployments: DeploymentOptions;
  db: Db;
  catalogue: Catalogue;
  provider?: ChatProvider;
  chatProviders?: ReadonlyMap<string, ChatProvider>;
  providers?: readonly string[];
  deleteModel?: ModelDeleter;
  producer: FineTuneRequestProducer;
  /** Writes gateway calls' holds (grouped under load). */
  holder: GatewayHolder;
  /** Settles and releases gateway calls' holds (the inference route; streaming settles through it too). */
  meter: GatewayMeter;
  metrics: ApiMetrics;
  log: FastifyBaseLogger;
  rateLimiter: GatewayRateLimiter;
  /** Publishes committed outbox rows now; the workers' relays would otherwise pick them up within a second. */
  flushOutbox(): Promise<void>;
  /** Puts a stored message back in its queue with fresh attempts (an admin retry of a dead letter). */
  requeue(queue: QueueName, jobId: string, payload: unknown): Promise<void>;
  /** Reserved above a fine-tune's estimate (the trainer's margin): what the 402 check compares. */
  reservationMarginPercent: number;
  /** Training closes and shutdowns are judged by it (issue 21.5). */
  clock: Clock;
  gateway: GatewaySettings;
  /** The gateway's key and model look-ups, cached for `gateway.cacheTtlMs`. */
  caches: GatewayCaches;
}

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
  });
  installErrorHandler(app);
  const producer = new FineTuneRequestProducer({ connection: opts.redis, prefix: opts.queuePrefix });
  const publisher = new Publisher(opts.redis, opts.queuePrefix);
  const metrics = createApiMetrics();
  const gateway = { ...defaultGatewaySettings, ...opts.gateway };
  const caches = new GatewayCaches(opts.db, gateway.cacheTtlMs);
  const deps: ApiDeps = {
    db: opts.db,
    metrics,
    log: app.log,
    rateLimiter: new GatewayRateLimiter(
      opts.redis,
      opts.queuePrefix,
      opts.rateLimit ?? { requestsPerMinute: 0, tokensPerMinute: 0 },
      (err) => {
        metrics.requests.inc({ model: 'any', outcome: 'rate_limit_unchecked' });
        app.log.warn({ err }, 'gateway rate limit not checked (Redis): call let through');
      },
    ),
    catalogue: opts.catalogue,
    provider: opts.provider,
    ...(opts.chatProviders ? { chatProviders: opts.chatProviders } : {}),
    ...(opts.providers ? { providers: opts.providers } : {}),
    ...(opts.deleteModel ? { deleteModel: opts.deleteModel } : {}),
    deployments: opts.deployments ?? { defaultProvider: 'simulator' },
    producer,
    holder: new GatewayHolder(opts.db, gateway.holdCommit, metrics),
    meter: new GatewayMeter(opts.db, app.log, metrics, () => deps.flushOutbox()),
    reservationMarginPercent: opts.reservationMarginPercent ?? 10,
    clock: opts.clock ?? processClock(),
    gateway,
    caches,
    async flushOutbox() {
      try {
        await relayOutbox(opts.db, (rows) => publisher.publishOutboxRows(rows));
      } catch (err) {
        // The rows stay unpublished and the workers' relays retry them: not the caller's problem.
        app.log.warn({ err }, 'outbox relay from the API failed; workers will publish');
      }
    },
    async requeue(queue, jobId, payload) {
      await publisher.retryFresh(queue, jobId, payload as MessageInput<typeof queue>);
    },
  };
  const authenticate = makeAuthenticator(opts.db, opts.adminKey, caches.keyHolder);
  clearModelsOnWrites(app, caches);
  const table = new RouteTable(app, authenticate);

  registerDatasetRoutes(table, deps);
  registerRequestRoutes(table, deps);
  registerFineTuneRoutes(table, deps);
  registerActivationRoutes(table, deps);
  registerMigrationRoutes(table, deps);
  registerDocumentRoutes(table, deps);
  registerTrainingProfileRoutes(table, deps);
  registerPromotionRoutes(table, deps);
  registerEvaluationRoutes(table, deps);
  registerDiscardRoutes(table, deps);
  registerAliasRoutes(table, deps);
  registerLifecycleRoutes(table, deps);
  registerInferenceRoutes(table, deps);
  registerCreditRoutes(table, deps);
  registerAdminRoutes(table, deps);
  registerDeadLetterRoutes(table, deps);

  const document = buildOpenApiDocument(table.routes, { title: 'Tuneline API', version: '1.0.0' });
  app.get('/openapi.json', async () => document);
  app.get('/livez', async () => ({ ok: true }));
  // Prometheus text, behind the admin key (gateway volumes and credits are business figures).
  app.get('/metrics', async (request, reply) => {
    await authenticate(request, 'admin');
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/readyz', async (_request, reply) => {
    try {
      await opts.db.selectFrom('licenses').select('id').limit(1).execute();
      await opts.redis.ping();
      return { ok: true };
    } catch (err) {
      return reply.code(503).send({ ok: false, error: (err as Error).message });
    }
  });
  registerStaticPages(app);

  // The queue dashboard, behind the admin key (Bearer, or Basic with the key as password for browsers).
  const dashboardQueues = QUEUE_NAMES.map(
    (name) => new Queue(queues[name].name, { connection: opts.redis, prefix: opts.queuePrefix }),
  );
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      try {
        await authenticate(request, 'admin');
      } catch (err) {
        // Answered here: bull-board installs its own error handler inside this scope.
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof HttpError ? err.message : 'internal error';
        return reply
          .code(status)
          .header('WWW-Authenticate', 'Basic realm="tuneline queues"')
          .send({ error: { message } });
      }
    });
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath('/admin/queues');
    createBullBoard({ queues: dashboardQueues.map((q) => new BullMQAdapter(q)), serverAdapter });
    await scope.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
  });

  const sweeper = new GatewaySweeper(opts.db, gateway, app.log, metrics);
  sweeper.start();
  app.addHook('onClose', async () => {
    await sweeper.stop();
    await deps.meter.close();
    await Promise.all([producer.close(), publisher.close(), ...dashboardQueues.map((q) => q.close())]);
  });
  return app;
}
