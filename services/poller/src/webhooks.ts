import { createServer } from 'node:http';
import { formatZodError, webhookPollMessage } from '@tuneline/contracts';
import {
  type Db,
  findFineTuneByProviderJob,
  inTransaction,
  isTerminalStatus,
  OutboxCapture,
  type OutboxDispatch,
  recordWebhookDelivery,
  writeOutbox,
} from '@tuneline/db';
import type { Logger } from '@tuneline/runtime';
import { z } from 'zod';

/** A verified webhook event (OpenAI's shape: `fine_tuning.job.succeeded` with `data.id` the job id). */
export interface WebhookEvent {
  id?: string;
  type: string;
  data?: { id?: string } | null;
}

/**
 * The shape a verified event must have before anything reads it: an object with a `type`, and for a
 * job event the job id in `data.id`. The signature proves who sent the bytes, not that they are an
 * event (`null`, `[]`, `{}` and `{"type":5}` verify fine and used to answer 500, retried for ever).
 */
const webhookEventSchema = z
  .looseObject({
    type: z.string().min(1, 'must be a non-empty string'),
    data: z.looseObject({ id: z.string().min(1, 'must be a non-empty string').optional() }).nullish(),
  })
  .superRefine((event, ctx) => {
    if (event.type.startsWith('fine_tuning.job.') && !event.data?.id) {
      ctx.addIssue({ code: 'custom', path: ['data', 'id'], message: 'a job event must name its job' });
    }
  });

export interface WebhookServerOptions {
  db: Db;
  log: Logger;
  port: number;
  host?: string;
  /** Verifies signature and timestamp (Standard Webhooks via the SDK); throws when either is bad. */
  unwrap(body: string, headers: Record<string, string>): WebhookEvent | Promise<WebhookEvent>;
  /**
   * Publishes the poll a delivery committed, so it starts without waiting for the relay timer (which
   * publishes it otherwise). Must not throw.
   */
  publish?(rows: readonly OutboxDispatch[]): Promise<unknown>;
}

export interface WebhookServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = '/webhooks/provider';

/**
 * `POST /webhooks/provider`: verifies the delivery, records its `webhook-id` (a repeat changes nothing)
 * and queues an immediate poll of the job it names. Any verification failure is a 400 with no effect.
 */
export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url?.split('?')[0] !== WEBHOOK_PATH)
      return reply(404, { error: 'not found' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      // The signature covers the exact bytes: verify the raw body.
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string') headers[k] = v;
        else if (Array.isArray(v) && v[0] !== undefined) headers[k] = v[0];
      }
      handleDelivery(opts, body, headers).then(
        ({ status, body: out }) => reply(status, out),
        (err: unknown) => {
          opts.log.error({ err: String(err) }, 'webhook handling failed');
          reply(500, { error: 'internal error' }); // the provider retries
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    port,
    url: `http://${host}:${port}${WEBHOOK_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const MAX_BODY_BYTES = 1024 * 1024;

async function handleDelivery(
  opts: WebhookServerOptions,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  let event: WebhookEvent;
  try {
    event = await opts.unwrap(body, headers);
  } catch (err) {
    opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'webhook rejected');
    return { status: 400, body: { error: 'invalid webhook signature or timestamp' } };
  }
  const webhookId = headers['webhook-id'];
  if (!webhookId) return { status: 400, body: { error: 'missing webhook-id header' } };
  const shape = webhookEventSchema.safeParse(event);
  if (!shape.success) {
    const problem =
      Array.isArray(event) || typeof event !== 'object' || event === null
        ? 'the event is not a JSON object'
        : formatZodError(shape.error);
    opts.log.warn({ webhookId, problem }, 'webhook event has the wrong shape: refused');
    return { status: 400, body: { error: `invalid webhook event: ${problem}` } };
  }
  const providerJobId = event.type.startsWith('fine_tuning.job.') ? (event.data?.id ?? null) : null;

  const capture = new OutboxCapture();
  const queued = await capture.run(() =>
    inTransaction(opts.db, async (tx) => {
      const first = await recordWebhookDelivery(tx, { webhookId, eventType: event.type, providerJobId });
      if (!first || !providerJobId) return false; // a repeat, or not about a job
      const fineTune = await findFineTuneByProviderJob(tx, providerJobId);
      // Unknown job (its id not stored yet): the scheduled polls find the ending anyway.
      if (!fineTune || isTerminalStatus(fineTune.status)) return false;
      await writeOutbox(
        tx,
        webhookPollMessage({ fineTuneId: fineTune.id, correlationId: fineTune.correlationId, webhookId }),
      );
      return true;
    }),
  );
  await opts.publish?.(capture.committed);
  return { status: 200, body: { received: true, queued } };
}
