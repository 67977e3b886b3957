import { startWebhookServer, type WebhookServer } from '@tuneline/poller';
import { createProviderProfile } from '@tuneline/provider';
import { createLogger } from '@tuneline/runtime';
import { signWebhook } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

/**
 * Issue 16.9: a delivery whose signature verifies but whose event is not an event (`null`, `[]`, `{}`,
 * `{"type":5}`) is a 400 after the signature check, logged with its webhook id, and leaves no trace;
 * it used to be a 500, which the provider retries for ever.
 */

const SECRET = `whsec_${Buffer.from('tuneline-webhook-input-secret-32').toString('base64')}`;

let tdb: TestDatabase;
let hooks: WebhookServer;
const lines: Record<string, unknown>[] = [];

test.beforeAll(async ({ database }) => {
  tdb = database;
  // The real profile verifies (the SDK's Standard Webhooks check); it never calls the provider here.
  const provider = createProviderProfile({
    kind: 'simulator',
    apiKey: 'sk-unused',
    baseURL: 'http://127.0.0.1:9/v1',
    common: { webhookSecret: SECRET, maxRetries: 0, timeoutMs: 1_000 },
  });
  hooks = await startWebhookServer({
    db: tdb.db,
    log: createLogger('poller', 'info', { write: (line) => lines.push(JSON.parse(line)) }),
    port: 0,
    unwrap: (body, headers) => provider.unwrapWebhook(body, headers),
  });
});

afterAll(async () => {
  await hooks?.close();
});

async function deliver(webhookId: string, body: string, secret = SECRET) {
  const timestamp = Math.floor(Date.now() / 1000);
  const res = await fetch(hooks.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(secret, webhookId, timestamp, body),
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

const recorded = (webhookId: string) =>
  tdb.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId).execute();

describe('webhook events of the wrong shape', () => {
  it.each([
    ['null', 'null', 'not a JSON object'],
    ['an array', '[]', 'not a JSON object'],
    ['a number', '5', 'not a JSON object'],
    ['an empty object', '{}', 'type:'],
    ['a numeric type', '{"type":5}', 'type:'],
    ['a job event with data null', '{"type":"fine_tuning.job.succeeded","data":null}', 'data.id:'],
    ['a job event whose job id is a number', '{"type":"fine_tuning.job.failed","data":{"id":7}}', 'data.id:'],
    ['data that is an array', '{"type":"fine_tuning.job.failed","data":[]}', 'data:'],
  ])('answers 400 for %s, logs the webhook id and records nothing', async (what, body, problem) => {
    const webhookId = `msg_bad_${what.replace(/\W+/g, '_')}`;
    const res = await deliver(webhookId, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^invalid webhook event: /);
    expect(res.body.error).toContain(problem);
    const logged = lines.find((l) => l.webhookId === webhookId);
    expect(logged).toMatchObject({ level: 40, msg: 'webhook event has the wrong shape: refused' });
    expect(String(logged?.problem)).toContain(problem);
    expect(await recorded(webhookId)).toEqual([]);
  });

  it('still refuses a bad signature before looking at the body, and accepts a well-formed event', async () => {
    const forged = await deliver(
      'msg_forged',
      'null',
      `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`,
    );
    expect(forged).toEqual({ status: 400, body: { error: 'invalid webhook signature or timestamp' } });
    expect(lines.some((l) => l.webhookId === 'msg_forged')).toBe(false);

    const good = await deliver(
      'msg_good',
      JSON.stringify({ id: 'evt_1', type: 'fine_tuning.job.succeeded', data: { id: 'ftjob-unknown' } }),
    );
    expect(good.status).toBe(200);
    expect(await recorded('msg_good')).toHaveLength(1);
    // An event about something else than a job needs no job id.
    expect((await deliver('msg_other', JSON.stringify({ type: 'batch.completed', data: {} }))).status).toBe(
      200,
    );
  });
});
