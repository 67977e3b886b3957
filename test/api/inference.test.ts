import { randomUUID } from 'node:crypto';
import { auditLedger, getBalance } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';
import { type ApiContext, it, trainSimulatorModel } from './support.ts';

/** The inference gateway: own active models only, metered in the ledger. */

let { t, sim, a, b, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, sim, a, b, call } = api);
});

describe('inference', () => {
  it('serves only the caller’s own active models and meters usage in the ledger', async () => {
    const model = await trainSimulatorModel(sim);
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const ft = await makeFineTune(t.db, a.id, ds, { model });
    const chat = { model, messages: [{ role: 'user', content: 'INVOICE 1003\nTotal: 40.00 EUR' }] };

    // Inactive: 404, and nothing metered.
    expect((await call('POST', '/v1/chat/completions', a.key, chat)).status).toBe(404);
    await call('POST', `/v1/fine-tunes/${ft}/activate`, a.key);
    // Another license asking for it: 404 too.
    expect((await call('POST', '/v1/chat/completions', b.key, chat)).status).toBe(404);
    expect(
      (await call('POST', '/v1/chat/completions', a.key, { ...chat, model: 'gpt-4o-mini-2024-07-18' }))
        .status,
    ).toBe(404);
    expect(await t.db.selectFrom('inference_usage').selectAll().execute()).toHaveLength(0);

    const before = await getBalance(t.db, a.id);
    const res = await call('POST', '/v1/chat/completions', a.key, chat);
    expect(res.status).toBe(200);
    expect(res.json.object).toBe('chat.completion');
    expect(res.json.choices[0].message.content).toContain('40');
    const usage = await t.db
      .selectFrom('inference_usage')
      .selectAll()
      .where('fine_tune_id', '=', ft)
      .execute();
    expect(usage).toHaveLength(1);
    expect(usage[0]?.prompt_tokens).toBe(res.json.usage.prompt_tokens);
    expect(usage[0]?.completion_tokens).toBe(res.json.usage.completion_tokens);
    const credits = BigInt(usage[0]?.credits ?? '0');
    expect(credits).toBeGreaterThan(0n);
    const after = await getBalance(t.db, a.id);
    expect(before.posted - after.posted).toBe(credits);
    // The fixtures' settled fine-tunes have no ledger posts (inserted directly); every other invariant holds.
    const { violations } = await auditLedger(t.db);
    expect(violations.filter((v) => !v.invariant.includes('settled fine-tune'))).toEqual([]);
    const log = await call('GET', '/v1/credits/usage', a.key);
    const last = log.json.data.at(-1);
    expect(last).toMatchObject({ kind: 'charge', model, amount: credits.toString() });

    const bad = await call('POST', '/v1/chat/completions', a.key, { model, messages: [] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ type: 'invalid_request_error', param: 'messages' });
    const unknown = await call('POST', '/v1/chat/completions', a.key, { ...chat, temprature: 0 });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({ param: 'temprature', code: 'unknown_parameter' });
  });

  /** An active fine-tune of `license` on a model the simulator does not serve, asked once; the answer's status. */
  async function askUnservedModel(license: { id: string; key: string }, tag: string) {
    const model = `ft:gpt-4o-mini-2024-07-18:${tag}:${randomUUID().slice(0, 6)}`;
    const ft = await makeFineTune(t.db, license.id, await makeDataset(t.db, license.id, 'uploaded'), {
      model,
      active: true,
    });
    const res = await call('POST', '/v1/chat/completions', license.key, {
      model,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const metered = await t.db
      .selectFrom('inference_usage')
      .selectAll()
      .where('fine_tune_id', '=', ft)
      .execute();
    return { res, metered };
  }

  it('answers 502 and meters nothing when the provider fails', async () => {
    const { res, metered } = await askUnservedModel(a, 'gone');
    expect(res.status).toBe(502);
    expect(res.json.error.message).toMatch(/provider/);
    expect(metered).toHaveLength(0);
  });

  it('refuses inference when no credits are available', async () => {
    const { res, metered } = await askUnservedModel(await makeLicense(t.db, 'lic-poor', 0n), 'poor');
    expect(res.status).toBe(402);
    expect(metered).toHaveLength(0);
  });
});
