// Standard Webhooks delivery: signed `fine_tuning.job.*` events, retried with backoff on non-2xx.
import { createHmac } from 'node:crypto';
import type { Clock, Scheduler } from './clock.ts';

/** `v1,<base64 HMAC-SHA256("id.timestamp.body")>` keyed with the base64 part of a `whsec_` secret. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret);
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface WebhookDeliveryRecord {
  webhookId: string;
  type: string;
  jobId: string;
  attempts: number;
  statuses: Array<number | string>;
  delivered: boolean;
}

export interface WebhookSenderOptions {
  url: string;
  secret: string;
  clock: Clock;
  scheduler: Scheduler;
  /** Attempts in all before giving up. */
  maxAttempts?: number;
  /** First retry delay in simulated ms; doubles each time. */
  baseDelayMs?: number;
}

export class WebhookSender {
  readonly deliveries: WebhookDeliveryRecord[] = [];
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly opts: WebhookSenderOptions) {}

  /** Sends one event (its id and body stay the same across retries and duplicates). */
  send(webhookId: string, event: { type: string; data: { id: string } } & Record<string, unknown>): void {
    const record: WebhookDeliveryRecord = {
      webhookId,
      type: event.type,
      jobId: event.data.id,
      attempts: 0,
      statuses: [],
      delivered: false,
    };
    this.deliveries.push(record);
    this.attempt(record, JSON.stringify(event));
  }

  private attempt(record: WebhookDeliveryRecord, body: string): void {
    if (this.closed) return;
    const { maxAttempts = 8, baseDelayMs = 1000 } = this.opts;
    record.attempts++;
    const timestamp = Math.floor(this.opts.clock.now() / 1000);
    const p = fetch(this.opts.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)',
        'webhook-id': record.webhookId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(this.opts.secret, record.webhookId, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        record.statuses.push(res.status);
        return res.ok;
      })
      .catch((err: unknown) => {
        record.statuses.push(err instanceof Error ? err.message : String(err));
        return false;
      })
      .then((ok) => {
        if (ok) record.delivered = true;
        else if (record.attempts < maxAttempts) {
          this.opts.scheduler.after(baseDelayMs * 2 ** (record.attempts - 1), () =>
            this.attempt(record, body),
          );
        }
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }
}
