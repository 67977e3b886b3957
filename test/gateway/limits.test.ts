import { getBalance } from '@tuneline/ledger';
import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { it, test } from '../support/fixtures.ts';
import { ADMIN_KEY, type GatewayRig, simulatorChatCalls, startRig, trainSimulatorModel } from './support.ts';

let rig: GatewayRig;
let model: string;

test.beforeAll(async ({ database, prefix }) => {
  // 3 calls per minute; 30,000 tokens per minute (a call below asks for at most 12,000 completion tokens).
  rig = await startRig(
    { database, prefix },
    { rateLimit: { requestsPerMinute: 3, tokensPerMinute: 30_000 } },
  );
  model = await trainSimulatorModel(rig.sim);
});

afterAll(async () => {
  await rig?.close();
});

async function licenseWithModel(id: string) {
  const lic = await makeLicense(rig.t.db, id, 1_000_000n);
  await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
    model,
    active: true,
  });
  return lic;
}

const chat = (key: string, maxTokens = 50) =>
  rig.app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}` },
    payload: {
      model,
      messages: [{ role: 'user', content: 'INVOICE 3\nTotal: 30.00 EUR' }],
      max_tokens: maxTokens,
    },
  });

describe('per-license rate limit', () => {
  it('the 4th call in a minute is refused 429 with Retry-After in the OpenAI envelope; nothing held or forwarded; other licenses unaffected', async () => {
    const lic = await licenseWithModel('lic-rpm');
    for (let i = 0; i < 3; i++) expect((await chat(lic.key)).statusCode).toBe(200);
    const before = { sim: simulatorChatCalls(rig.sim), balance: await getBalance(rig.t.db, lic.id) };
    const res = await chat(lic.key);
    expect(res.statusCode).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(res.headers['x-ratelimit-limit-requests']).toBe('3');
    expect(res.json()).toEqual({
      error: {
        message: expect.stringMatching(/Rate limit reached .* requests per minute: limit 3/),
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
    expect(simulatorChatCalls(rig.sim)).toBe(before.sim);
    expect(await getBalance(rig.t.db, lic.id)).toEqual(before.balance);
    // The SDK sees an ordinary RateLimitError.
    const client = new OpenAI({
      baseURL: `${await rig.app.listen({ port: 0, host: '127.0.0.1' })}/v1`,
      apiKey: lic.key,
      maxRetries: 0,
    });
    await expect(
      client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const other = await licenseWithModel('lic-rpm-other');
    expect((await chat(other.key)).statusCode).toBe(200);
  });

  it('tokens per minute count the worst case at admission', async () => {
    const lic = await licenseWithModel('lic-tpm');
    expect((await chat(lic.key, 12_000)).statusCode).toBe(200);
    expect((await chat(lic.key, 12_000)).statusCode).toBe(200);
    const res = await chat(lic.key, 12_000);
    expect(res.statusCode).toBe(429);
    expect(res.json().error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

describe('the provider’s own 429', () => {
  it('goes back to the caller with its headers, and the hold is released', async () => {
    const lic = await licenseWithModel('lic-provider-429');
    rig.sim.admin.setFaults({ rate429: 1, retryAfterSeconds: 7 });
    try {
      const res = await chat(lic.key);
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.headers['retry-after-ms']).toBe('7000');
      expect(res.headers['x-ratelimit-remaining-requests']).toBe('0');
      expect(res.json().error).toMatchObject({ code: 'rate_limit_exceeded' });
    } finally {
      rig.sim.admin.setFaults({});
    }
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 1_000_000n, pending: 0n });
  });
});

describe('/metrics', () => {
  it('counts gateway calls, tokens and credits by base model and outcome, with latency histograms', async () => {
    const res = await rig.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    const text = res.body;
    const base = 'gpt-4o-mini-2024-07-18';
    expect(text).toMatch(
      new RegExp(`tuneline_gateway_requests_total\\{model="${base}",outcome="ok",service="api"\\} \\d+`),
    );
    expect(text).toContain(
      `tuneline_gateway_requests_total{model="${base}",outcome="rate_limited",service="api"}`,
    );
    expect(text).toContain(
      `tuneline_gateway_requests_total{model="${base}",outcome="provider_rate_limited",service="api"} 1`,
    );
    expect(text).toMatch(
      new RegExp(`tuneline_gateway_tokens_total\\{model="${base}",kind="prompt",service="api"\\} [1-9]`),
    );
    expect(text).toMatch(
      new RegExp(`tuneline_gateway_credits_total\\{model="${base}",service="api"\\} [1-9]`),
    );
    expect(text).toContain(
      'tuneline_gateway_request_duration_seconds_bucket{le="0.005",service="api",outcome="ok"}',
    );
    expect(text).toContain('tuneline_gateway_overhead_seconds_count');
  });
});
