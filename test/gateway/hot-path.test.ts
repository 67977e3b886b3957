import { randomUUID } from 'node:crypto';
import {
  type CallModel,
  countPromptTokens,
  createApiMetrics,
  GatewayMeter,
  inferenceTerms,
  promptTokenBound,
  worstCase,
} from '@tuneline/api';
import { defaultCatalogue, type Encoding } from '@tuneline/dataset';
import { createDb } from '@tuneline/db';
import { auditLedger, getBalance, holdCall } from '@tuneline/ledger';
import { sql } from 'kysely';
import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { ADMIN_KEY, type ServingRig, startServingRig, licenseWithModel as withModel } from './support.ts';

// What the gateway's hot path does to be fast (issue 19, the benchmark), and why each stays safe:
// cached key and model look-ups, the prompt held at an upper bound, holds committed asynchronously.

let rig: ServingRig;
let model: string;
let baseURL: string;
const TTL_MS = 2_000;

test.beforeAll(async ({ database, prefix }) => {
  rig = await startServingRig({ database, prefix }, { gateway: { cacheTtlMs: TTL_MS } });
  ({ model, baseURL } = rig);
});

afterAll(async () => {
  await rig?.close();
});

const BASE = 'gpt-4o-mini-2024-07-18';

const licenseWithModel = (id: string, credits = 100_000n) => withModel(rig, { model, baseURL }, id, credits);

const ask = (content = 'INVOICE 1011\nTotal: 110.00 EUR', maxTokens = 20) => ({
  model,
  messages: [{ role: 'user' as const, content }],
  max_tokens: maxTokens,
});

const statusOf = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (err: { status?: number }) => err.status ?? 0,
  );

const clean = async () =>
  (await auditLedger(rig.t.db)).violations.filter((v) => !v.invariant.includes('settled fine-tune'));

describe('cached key and model look-ups', () => {
  it('a deactivation through this API process applies to its next call, cache or not', async () => {
    const lic = await licenseWithModel('lic-cache-api');
    expect(await statusOf(lic.client.chat.completions.create(ask()))).toBe(200);
    const res = await rig.app.inject({
      method: 'POST',
      url: `/v1/fine-tunes/${lic.fineTuneId}/deactivate`,
      headers: { authorization: `Bearer ${lic.key}` },
    });
    expect(res.statusCode).toBe(200);
    expect(await statusOf(lic.client.chat.completions.create(ask()))).toBe(404);
  });

  it('a model never found is asked again: activated elsewhere, it serves the next call', async () => {
    const lic = await makeLicense(rig.t.db, 'lic-cache-new');
    const client = new OpenAI({ baseURL, apiKey: lic.key, maxRetries: 0 });
    expect(await statusOf(client.chat.completions.create(ask()))).toBe(404);
    await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model,
      active: true,
    });
    expect(await statusOf(client.chat.completions.create(ask()))).toBe(200);
  });

  it('a deactivation or a key revocation by another process applies once the TTL has passed', async () => {
    const lic = await licenseWithModel('lic-cache-elsewhere');
    expect(await statusOf(lic.client.chat.completions.create(ask()))).toBe(200);
    // Another process (a worker, the CLI) writes the database directly: no invalidation reaches us.
    await rig.t.db
      .updateTable('fine_tunes')
      .set({ active: false })
      .where('id', '=', lic.fineTuneId)
      .execute();
    await waitFor(
      async () => (await statusOf(lic.client.chat.completions.create(ask()))) === 404,
      5 * TTL_MS,
    );
    await rig.t.db.updateTable('fine_tunes').set({ active: true }).where('id', '=', lic.fineTuneId).execute();
    expect(await statusOf(lic.client.chat.completions.create(ask()))).toBe(200);

    await rig.t.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date() })
      .where('license_id', '=', lic.id)
      .execute();
    await waitFor(
      async () => (await statusOf(lic.client.chat.completions.create(ask()))) === 401,
      5 * TTL_MS,
    );
  });
});

describe('the prompt held at an upper bound', () => {
  const texts = [
    'INVOICE 1001\nSupplier: Acme GmbH\nTotal: 1,234.56 EUR',
    '請求書番号 12345 合計金額 ¥98,765 株式会社テスト',
    '🧾🧾🧾 total 💶 42 — naïve café façade',
    '0123456789'.repeat(40),
    '   \n\n\t\t  '.repeat(30),
    Array.from({ length: 300 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 94))).join(''),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1'),
  ];

  it('is never below the exact count, in either encoding, with names, tools and a schema', () => {
    for (const encoding of ['o200k_base', 'cl100k_base'] as Encoding[]) {
      for (const text of texts) {
        const body = {
          messages: [
            { role: 'system', content: text, name: 'ocr' },
            { role: 'user', content: [{ type: 'text', text }] },
          ],
          tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
          response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
        };
        expect(promptTokenBound(body)).toBeGreaterThanOrEqual(countPromptTokens(body, encoding));
      }
    }
  });

  it('holds the bound when the balance has room, the exact count when only that fits, and refuses with the exact figures below it', async () => {
    const terms = inferenceTerms(defaultCatalogue, BASE);
    const callModel: CallModel = {
      fineTuneId: 'x',
      model,
      baseModel: BASE,
      encoding: 'o200k_base',
      maxOutputTokens: terms.maxOutputTokens,
      price: terms.price,
    };
    const long = ask(texts[0]?.repeat(300), 10);
    const bound = worstCase(long, callModel);
    const exact = worstCase(long, callModel, 'exact');
    expect(bound.credits).toBeGreaterThan(exact.credits);

    const heldAmount = async (licenseId: string) =>
      (
        await rig.t.db
          .selectFrom('ledger_transfers')
          .select('amount')
          .where('license_id', '=', licenseId)
          .where('kind', '=', 'hold')
          .executeTakeFirstOrThrow()
      ).amount;
    const roomy = await licenseWithModel('lic-bound-roomy');
    expect(await statusOf(roomy.client.chat.completions.create(long))).toBe(200);
    expect(await heldAmount(roomy.id)).toBe(bound.credits.toString());

    const tight = await licenseWithModel('lic-bound-tight', exact.credits);
    expect(await statusOf(tight.client.chat.completions.create(long))).toBe(200);
    expect(await heldAmount(tight.id)).toBe(exact.credits.toString());

    const short = await licenseWithModel('lic-bound-short', exact.credits - 1n);
    const refused = await rig.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${short.key}` },
      payload: long,
    });
    expect(refused.statusCode).toBe(402);
    expect(refused.json().error.message).toContain(
      `needs ${exact.credits} (${exact.promptTokens} prompt + up to 10 completion tokens), available ${exact.credits - 1n}`,
    );
    expect(await getBalance(rig.t.db, short.id)).toMatchObject({ pending: 0n, posted: exact.credits - 1n });
    expect(await clean()).toEqual([]);
  });
});

describe('holds committed without waiting for the WAL flush', () => {
  it('an asynchronous hold holds like a durable one and leaves its session synchronous', async () => {
    const lic = await licenseWithModel('lic-async', 100n);
    const one = createDb(rig.t.url, { max: 1 });
    try {
      const base = { licenseId: lic.id, fineTuneId: lic.fineTuneId, model };
      expect(await holdCall(one, { ...base, callId: randomUUID(), amount: 60n }, { durable: false })).toEqual(
        {
          outcome: 'held',
        },
      );
      // The rule is the same statement's: what does not fit is refused.
      expect(
        await holdCall(one, { ...base, callId: randomUUID(), amount: 60n }, { durable: false }),
      ).toMatchObject({ outcome: 'refused', available: 40n });
      const { rows } = await sql<{
        setting: string;
      }>`SELECT current_setting('synchronous_commit') AS setting`.execute(one);
      expect(rows[0]?.setting).toBe('on');
    } finally {
      await one.destroy();
    }
  });

  it('a settlement whose hold was lost (a Postgres crash took it) charges nothing, keeps the ledger whole and is counted', async () => {
    const lic = await licenseWithModel('lic-lost-hold', 1_000n);
    const metrics = createApiMetrics();
    const meter = new GatewayMeter(rig.t.db, undefined, metrics);
    const terms = inferenceTerms(defaultCatalogue, BASE);
    await meter.settle(
      {
        callId: randomUUID(),
        keepResponse: false,
        model: {
          fineTuneId: lic.fineTuneId,
          model,
          baseModel: BASE,
          encoding: 'o200k_base',
          maxOutputTokens: terms.maxOutputTokens,
          price: terms.price,
        },
      },
      { prompt_tokens: 100, completion_tokens: 10 },
    );
    await meter.close();
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 1_000n, pending: 0n });
    expect(
      await metrics.registry.getSingleMetricAsString('tuneline_gateway_settled_without_hold_total'),
    ).toMatch(/ 1$/m);
    expect(await clean()).toEqual([]);
    // The API's /metrics has the series too.
    const res = await rig.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.body).toContain('tuneline_gateway_settled_without_hold_total');
  });
});
