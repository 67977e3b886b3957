import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { FineTuneRequestProducer, QUEUE_NAMES, queues } from '@tuneline/contracts';
import type { Catalogue } from '@tuneline/dataset';
import { type Db, relayOutbox } from '@tuneline/db';
import { Publisher } from '@tuneline/runtime';
import { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { makeAuthenticator } from './auth.ts';
import { HttpError, installErrorHandler, RouteTable } from './http.ts';
import { buildOpenApiDocument } from './openapi.ts';
import type { ChatProvider } from './provider.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerCreditRoutes } from './routes/credits.ts';
import { registerDatasetRoutes } from './routes/datasets.ts';
import { type ModelDeleter, registerDiscardRoutes } from './routes/discard.ts';
import { registerFineTuneRoutes } from './routes/fine-tunes.ts';
import { registerInferenceRoutes } from './routes/inference.ts';
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
  /** Ops key from the environment, in addition to admin rows in api_keys. */
  adminKey?: string;
  /** Providers the workers can reach; a request naming another fails at once. Unset: not checked. */
  providers?: readonly string[];
  /** Deletes a discarded fine-tune's model at its provider; unset: discarding only marks the row. */
  deleteModel?: ModelDeleter;
  /** Largest accepted request body in bytes (default 20 MB). */
  bodyLimit?: number;
  /** A pino logger (fastify's own logging is off without one). */
  logger?: FastifyBaseLogger;
}

/** What route modules share. */
export interface ApiDeps {
  db: Db;
  catalogue: Catalogue;
  provider?: ChatProvider;
  providers?: readonly string[];
  deleteModel?: ModelDeleter;
  producer: FineTuneRequestProducer;
  /** Publishes committed outbox rows now; the workers' relays would otherwise pick them up within a second. */
  flushOutbox(): Promise<void>;
}

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
  });
  installErrorHandler(app);
  const producer = new FineTuneRequestProducer({ connection: opts.redis, prefix: opts.queuePrefix });
  const publisher = new Publisher(opts.redis, opts.queuePrefix);
  const deps: ApiDeps = {
    db: opts.db,
    catalogue: opts.catalogue,
    provider: opts.provider,
    ...(opts.providers ? { providers: opts.providers } : {}),
    ...(opts.deleteModel ? { deleteModel: opts.deleteModel } : {}),
    producer,
    async flushOutbox() {
      try {
        await relayOutbox(opts.db, (rows) => publisher.publishOutboxRows(rows));
      } catch (err) {
        // The rows stay unpublished and the workers' relays retry them: not the caller's problem.
        app.log.warn({ err }, 'outbox relay from the API failed; workers will publish');
      }
    },
  };
  const authenticate = makeAuthenticator(opts.db, opts.adminKey);
  const table = new RouteTable(app, authenticate);

  registerDatasetRoutes(table, deps);
  registerFineTuneRoutes(table, deps);
  registerDiscardRoutes(table, deps);
  registerInferenceRoutes(table, deps);
  registerCreditRoutes(table, deps);
  registerAdminRoutes(table, deps);

  const document = buildOpenApiDocument(table.routes, { title: 'Tuneline API', version: '1.0.0' });
  app.get('/openapi.json', async () => document);
  app.get('/livez', async () => ({ ok: true }));
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

  app.addHook('onClose', async () => {
    await Promise.all([producer.close(), publisher.close(), ...dashboardQueues.map((q) => q.close())]);
  });
  return app;
}
