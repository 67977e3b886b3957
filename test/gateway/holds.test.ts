import { worstCase } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { auditLedger, getBalance } from '@tuneline/ledger';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { it, test } from '../support/fixtures.ts';
import { type GatedRig, licenseWithModel, simulatorChatCalls, startGatedRig } from './support.ts';

// Forwarded calls wait at the rig's gate until the test opens it: every hold is decided before any call
// settles, so the outcome does not depend on how fast the simulator answers.
let forwarded = 0;

let rig: GatedRig;
let model: string;
let baseURL: string;

test.beforeAll(async ({ database, prefix }) => {
  rig = await startGatedRig({ database, prefix }, () => forwarded++);
  ({ model, baseURL } = rig);
});

afterAll(async () => {
  await rig?.close();
});

const price = { inputCreditsPerMillion: 300n, outputCreditsPerMillion: 1_200n };

function auditable(violations: { invariant: string }[]) {
  // The fixtures' settled fine-tunes have no ledger posts (inserted directly); every other invariant holds.
  return violations.filter((v) => !v.invariant.includes('settled fine-tune'));
}

describe('holds: the worst case is held before forwarding', () => {
  it('50 parallel calls on a balance that covers 10 worst cases: 10 forwarded, 40 refused with 402, never overdrawn', async () => {
    const body = {
      model,
      messages: [
        { role: 'system' as const, content: 'Extract fields as JSON.' },
        { role: 'user' as const, content: 'INVOICE 1003\nTotal: 40.00 EUR' },
      ],
      max_tokens: 8_000,
    };
    const cost = worstCase(body, {
      fineTuneId: 'x',
      model,
      baseModel: 'gpt-4o-mini-2024-07-18',
      encoding: 'o200k_base',
      maxOutputTokens: 16_384,
      price,
    });
    expect(defaultCatalogue['gpt-4o-mini-2024-07-18']?.encoding).toBe('o200k_base');
    // Covers 10 worst cases, one credit short of 11.
    const { client, ...lic } = await licenseWithModel(
      rig,
      { model, baseURL },
      'lic-par',
      cost.credits * 11n - 1n,
    );
    const simBefore = simulatorChatCalls(rig.sim);
    forwarded = 0;
    rig.shutGate();
    const calls = Array.from({ length: 50 }, () =>
      client.chat.completions.create(body).then(
        (r) => ({ ok: true as const, usage: r.usage }),
        (err: { status?: number }) => ({ ok: false as const, status: err.status }),
      ),
    );
    // Wait until every call is either forwarded (and waiting at the gate) or answered 402.
    const settled: Array<Awaited<(typeof calls)[number]>> = [];
    for (const c of calls) void c.then((r) => settled.push(r));
    for (let i = 0; i < 600 && forwarded + settled.length < 50; i++)
      await new Promise((r) => setTimeout(r, 25));
    const held = await getBalance(rig.t.db, lic.id);
    expect(forwarded).toBe(10);
    expect(held.pending).toBe(cost.credits * 10n);
    expect(held.available).toBe(cost.credits - 1n);
    rig.openGate();
    const results = await Promise.all(calls);
    const ok = results.filter((r) => r.ok);
    expect(ok).toHaveLength(10);
    expect(results.filter((r) => !r.ok).map((r) => r.status)).toEqual(Array(40).fill(402));
    // Only the forwarded calls reached the simulator.
    expect(simulatorChatCalls(rig.sim) - simBefore).toBe(10);

    const after = await getBalance(rig.t.db, lic.id);
    expect(after.pending).toBe(0n);
    expect(after.posted).toBeGreaterThanOrEqual(0n);
    expect(after.overageBlocked).toBe(false);
    const charged = ok.reduce(
      (sum, r) =>
        sum +
        (BigInt(r.usage?.prompt_tokens ?? 0) * price.inputCreditsPerMillion +
          BigInt(r.usage?.completion_tokens ?? 0) * price.outputCreditsPerMillion +
          999_999n) /
          1_000_000n,
      0n,
    );
    expect(cost.credits * 11n - 1n - after.posted).toBe(charged);
    const rows = await rig.t.db
      .selectFrom('inference_usage')
      .select(['credits'])
      .where('license_id', '=', lic.id)
      .execute();
    expect(rows).toHaveLength(10);
    expect(auditable((await auditLedger(rig.t.db)).violations)).toEqual([]);
  });

  it('a failed provider call gives its hold back whole and charges nothing', async () => {
    // A model the provider does not serve.
    const gone = 'ft:gpt-4o-mini-2024-07-18:gone:abc123';
    const lic = await licenseWithModel(rig, { model: gone, baseURL }, 'lic-gone', 10_000n);
    await expect(
      lic.client.chat.completions.create({ model: gone, messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 502 });
    const balance = await getBalance(rig.t.db, lic.id);
    expect(balance).toMatchObject({ posted: 10_000n, pending: 0n, available: 10_000n });
    const transfers = await rig.t.db
      .selectFrom('ledger_transfers')
      .select(['kind', 'amount', 'credit_account_id'])
      .where('license_id', '=', lic.id)
      .where('kind', 'in', ['hold', 'release'])
      .execute();
    expect(transfers.map((r) => r.kind).sort()).toEqual(['hold', 'release']);
    expect(transfers[0]?.credit_account_id).toMatch(/^system-inference-\d+$/);
    expect(auditable((await auditLedger(rig.t.db)).violations)).toEqual([]);
  });

  it('a worst case above the available credits is refused with 402 naming the amounts; nothing is forwarded', async () => {
    const lic = await makeLicense(rig.t.db, 'lic-small', 5n);
    await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model: `${model}`,
      active: false,
    });
    const other = 'ft:gpt-4o-mini-2024-07-18:small:xyz789';
    await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model: other,
      active: true,
    });
    const before = simulatorChatCalls(rig.sim);
    const res = await rig.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${lic.key}` },
      // No max_tokens: the model's output limit is the worst case (16,384 tokens: 20 credits).
      payload: { model: other, messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(res.statusCode).toBe(402);
    expect(res.json().error.message).toMatch(/needs 20 .*available 5, short by 15/);
    expect(simulatorChatCalls(rig.sim)).toBe(before);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 5n, pending: 0n });
  });
});
