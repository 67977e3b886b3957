// Standard Webhooks: the simulator's signatures verify with the SDK's `webhooks.unwrap`, tampering and
// stale timestamps are rejected, failed deliveries are retried, and the SDK's published vector reproduces.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signWebhook } from '@tuneline/simulator';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadConformanceChecker,
  type RecordingSimulator,
  sdkClient,
  startRecordingSimulator,
  uploadTrainingFile,
} from './support.ts';

const SECRET = `whsec_${Buffer.from('tuneline-simulator-test-secret-0123').toString('base64')}`;

interface Delivery {
  body: string;
  headers: IncomingHttpHeaders;
  answered: number;
}

/** A loopback receiver that answers 500 to the first `failFirst` deliveries, then 200. */
async function startReceiver(
  failFirst: number,
): Promise<{ url: string; deliveries: Delivery[]; server: Server }> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = deliveries.length < failFirst ? 500 : 200;
      deliveries.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, deliveries, server };
}

const headersOf = (d: Delivery) => ({
  'webhook-id': String(d.headers['webhook-id']),
  'webhook-timestamp': String(d.headers['webhook-timestamp']),
  'webhook-signature': String(d.headers['webhook-signature']),
});

async function waitUntil(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('webhooks', () => {
  let sim: RecordingSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const sdk = new OpenAI({ apiKey: 'unused', baseURL: 'http://127.0.0.1:1' });

  beforeAll(async () => {
    receiver = await startReceiver(2);
    sim = await startRecordingSimulator({
      seed: 11,
      speed: 2000,
      webhookUrl: receiver.url,
      webhookSecret: SECRET,
      webhookRetry: { baseDelayMs: 20 },
    });
  });
  afterAll(async () => {
    await sim?.close();
    await new Promise((r) => receiver?.server.close(r));
  });

  it('signs fine_tuning.job.succeeded and cancelled events the SDK verifies, retrying non-2xx answers', async () => {
    const client = sdkClient(sim);
    const training_file = await uploadTrainingFile(client);
    const ok = await client.fineTuning.jobs.create({ model: 'gpt-4o-mini-2024-07-18', training_file });
    await waitUntil(() => receiver.deliveries.some((d) => d.answered === 200));
    const cancelled = await client.fineTuning.jobs.create({ model: 'gpt-4o-mini-2024-07-18', training_file });
    await client.fineTuning.jobs.cancel(cancelled.id);
    await waitUntil(() => receiver.deliveries.filter((d) => d.answered === 200).length === 2);

    // The first event failed twice and was retried with the same id and body.
    const first = receiver.deliveries.slice(0, 3);
    expect(first.map((d) => d.answered)).toEqual([500, 500, 200]);
    expect(new Set(first.map((d) => d.headers['webhook-id'])).size).toBe(1);
    expect(new Set(first.map((d) => d.body)).size).toBe(1);

    const succeeded = await sdk.webhooks.unwrap(first[2]!.body, headersOf(first[2]!), SECRET);
    expect(succeeded).toMatchObject({
      type: 'fine_tuning.job.succeeded',
      object: 'event',
      data: { id: ok.id },
    });
    const last = receiver.deliveries.at(-1)!;
    const cancelEvent = await sdk.webhooks.unwrap(last.body, headersOf(last), SECRET);
    expect(cancelEvent).toMatchObject({ type: 'fine_tuning.job.cancelled', data: { id: cancelled.id } });
    const schemas = loadConformanceChecker();
    expect(schemas.errorsAgainst('WebhookFineTuningJobSucceeded', succeeded)).toEqual([]);
    expect(schemas.errorsAgainst('WebhookFineTuningJobCancelled', cancelEvent)).toEqual([]);
    expect(schemas.errorsAgainst('WebhookFineTuningJobSucceeded', cancelEvent)).not.toEqual([]);
    expect(sim.admin.state().webhookDeliveries.map((d) => [d.type, d.delivered])).toEqual([
      ['fine_tuning.job.succeeded', true],
      ['fine_tuning.job.cancelled', true],
    ]);
  });

  it('signs failed jobs too', async () => {
    const client = sdkClient(sim);
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: await uploadTrainingFile(client, 'not json\n', 'bad.jsonl'),
    });
    await waitUntil(() => receiver.deliveries.some((d) => d.body.includes(job.id)));
    const d = receiver.deliveries.find((x) => x.body.includes(job.id))!;
    const event = await sdk.webhooks.unwrap(d.body, headersOf(d), SECRET);
    expect(event).toMatchObject({ type: 'fine_tuning.job.failed', data: { id: job.id } });
    expect(loadConformanceChecker().errorsAgainst('WebhookFineTuningJobFailed', event)).toEqual([]);
  });

  it('rejects a tampered body, a wrong secret and an old timestamp', async () => {
    const d = receiver.deliveries.find((x) => x.answered === 200)!;
    const tampered = d.body.replace('fine_tuning.job', 'fine_tuning.jab');
    await expect(sdk.webhooks.unwrap(tampered, headersOf(d), SECRET)).rejects.toThrow(
      OpenAI.InvalidWebhookSignatureError,
    );
    await expect(
      sdk.webhooks.unwrap(d.body, headersOf(d), `whsec_${Buffer.from('other').toString('base64')}`),
    ).rejects.toThrow(OpenAI.InvalidWebhookSignatureError);
    const old = Math.floor(Date.now() / 1000) - 3600;
    const id = String(d.headers['webhook-id']);
    const stale = {
      'webhook-id': id,
      'webhook-timestamp': String(old),
      'webhook-signature': signWebhook(SECRET, id, old, d.body),
    };
    await expect(sdk.webhooks.unwrap(d.body, stale, SECRET)).rejects.toThrow(/too old/);
  });

  it('answered the API calls of this file in shapes that conform to the OpenAPI document', () => {
    const { checked, failures } = loadConformanceChecker().check(sim.recorded);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(5);
  });

  it("reproduces the SDK's published Standard Webhooks test vector", async () => {
    const secret = 'whsec_RdvaYFYUXuIFuEbvZHwMfYFhUf7aMYjYcmM24+Aj40c=';
    const payload =
      '{"id": "evt_685c059ae3a481909bdc86819b066fb6", "object": "event", "created_at": 1750861210, "type": "response.completed", "data": {"id": "resp_123"}}';
    const signature = signWebhook(secret, 'wh_685c059ae39c8190af8c71ed1022a24d', 1750861210, payload);
    expect(signature).toBe('v1,gUAg4R2hWouRZqRQG4uJypNS8YK885G838+EHb4nKBY=');
    const headers = {
      'webhook-id': 'wh_685c059ae39c8190af8c71ed1022a24d',
      'webhook-timestamp': '1750861210',
      'webhook-signature': signature,
    };
    const tolerance = Math.floor(Date.now() / 1000) - 1750861210 + 60;
    await expect(sdk.webhooks.unwrap(payload, headers, secret, tolerance)).resolves.toMatchObject({
      id: 'evt_685c059ae3a481909bdc86819b066fb6',
    });
  });
});

describe('duplicate webhook deliveries (fault)', () => {
  it('delivers the same event twice with the same webhook-id when asked to', async () => {
    const receiver = await startReceiver(0);
    const sim = await startRecordingSimulator({
      seed: 12,
      speed: 2000,
      webhookUrl: receiver.url,
      webhookSecret: SECRET,
      faults: { duplicateWebhookRate: 1 },
    });
    try {
      const client = sdkClient(sim);
      const job = await client.fineTuning.jobs.create({
        model: 'gpt-4o-mini-2024-07-18',
        training_file: await uploadTrainingFile(client),
      });
      await client.fineTuning.jobs.cancel(job.id);
      await waitUntil(() => receiver.deliveries.length === 2);
      const [a, b] = receiver.deliveries;
      expect(a!.headers['webhook-id']).toBe(b!.headers['webhook-id']);
      expect(a!.body).toBe(b!.body);
      expect(sim.admin.state().faultLog.filter((f) => f.fault === 'duplicate-webhook')).toHaveLength(1);
    } finally {
      await sim.close();
      await new Promise((r) => receiver.server.close(r));
    }
  });
});
