import { randomUUID } from 'node:crypto';
import { expireHold } from '@tuneline/db';
import {
  auditLedger,
  getBalance,
  grantCredits,
  type HoldResult,
  holdCall,
  holdCalls,
  releaseCall,
  type SettleResult,
  settleCall,
  settleCalls,
} from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

let t: TestDatabase;
let fineTuneId: string;

test.beforeAll(async ({ database }) => {
  t = database;
  await t.db.insertInto('licenses').values({ id: 'lic-h', name: 'holds' }).execute();
  fineTuneId = await makeFineTune(t.db, 'lic-h', await makeDataset(t.db, 'lic-h', 'uploaded'), {
    model: 'ft:m',
    active: true,
  });
});

async function license(id: string, credits: bigint) {
  await t.db.insertInto('licenses').values({ id, name: id }).execute();
  await grantCredits(t.db, { grantId: `seed-${id}`, licenseId: id, amount: credits });
}

const clean = async () =>
  (await auditLedger(t.db)).violations.filter((v) => !v.invariant.includes('settled fine-tune'));

describe('inference holds in the ledger', () => {
  it('hold, settle for less, replay: charged once, the rest released, audit clean', async () => {
    await license('lic-1', 100n);
    const callId = randomUUID();
    const base = { callId, licenseId: 'lic-1', fineTuneId, model: 'ft:m' };
    expect(await holdCall(t.db, { ...base, amount: 40n })).toEqual({ outcome: 'held' });
    expect(await getBalance(t.db, 'lic-1')).toMatchObject({ posted: 100n, pending: 40n, available: 60n });
    const usage = { callId, amount: 7n, promptTokens: 100, completionTokens: 20 };
    expect(await settleCall(t.db, usage)).toEqual({ outcome: 'settled', held: 40n, charged: 7n });
    expect(await settleCall(t.db, usage)).toEqual({ outcome: 'already', held: 40n, charged: 7n });
    expect(await releaseCall(t.db, callId)).toMatchObject({ outcome: 'settled' });
    expect(await getBalance(t.db, 'lic-1')).toMatchObject({ posted: 93n, pending: 0n, available: 93n });
    expect(await clean()).toEqual([]);
  });

  it('a hold that does not fit is refused and writes nothing; release gives a hold back once', async () => {
    await license('lic-2', 10n);
    const refused = await holdCall(t.db, {
      callId: randomUUID(),
      licenseId: 'lic-2',
      fineTuneId,
      model: 'ft:m',
      amount: 11n,
    });
    expect(refused).toEqual({ outcome: 'refused', available: 10n, required: 11n, overageBlocked: false });
    const callId = randomUUID();
    await holdCall(t.db, { callId, licenseId: 'lic-2', fineTuneId, model: 'ft:m', amount: 10n });
    expect(await releaseCall(t.db, callId)).toEqual({ outcome: 'released', held: 10n });
    expect(await releaseCall(t.db, callId)).toEqual({ outcome: 'already', held: 10n });
    expect(await settleCall(t.db, { callId, amount: 1n, promptTokens: 1, completionTokens: 1 })).toEqual({
      outcome: 'released',
      held: 10n,
    });
    expect(await getBalance(t.db, 'lic-2')).toMatchObject({ posted: 10n, pending: 0n });
    expect(await clean()).toEqual([]);
  });

  it('usage above the hold is charged and, past the balance, blocks the license until a top-up', async () => {
    await license('lic-3', 10n);
    const callId = randomUUID();
    await holdCall(t.db, { callId, licenseId: 'lic-3', fineTuneId, model: 'ft:m', amount: 8n });
    await settleCall(t.db, { callId, amount: 15n, promptTokens: 1_000, completionTokens: 500 });
    expect(await getBalance(t.db, 'lic-3')).toEqual({
      posted: -5n,
      pending: 0n,
      available: -5n,
      overageBlocked: true,
    });
    expect(await clean()).toEqual([]);
    const next = await holdCall(t.db, {
      callId: randomUUID(),
      licenseId: 'lic-3',
      fineTuneId,
      model: 'ft:m',
      amount: 0n,
    });
    expect(next).toMatchObject({ outcome: 'refused', overageBlocked: true });
    await grantCredits(t.db, { grantId: 'topup-lic-3', licenseId: 'lic-3', amount: 20n });
    expect(await getBalance(t.db, 'lic-3')).toMatchObject({ available: 15n, overageBlocked: false });
  });

  it('an Idempotency-Key is claimed with the hold: a second claim replays, a refused hold frees it', async () => {
    await license('lic-4', 50n);
    const first = randomUUID();
    const idem = { key: 'k-1', requestHash: 'h1' };
    const base = { licenseId: 'lic-4', fineTuneId, model: 'ft:m', idempotency: idem };
    expect(await holdCall(t.db, { ...base, callId: first, amount: 10n })).toEqual({ outcome: 'held' });
    expect(await holdCall(t.db, { ...base, callId: randomUUID(), amount: 10n })).toEqual({
      outcome: 'replay',
      callId: first,
      requestHash: 'h1',
      response: null,
    });
    await settleCall(t.db, {
      callId: first,
      amount: 3n,
      promptTokens: 5,
      completionTokens: 5,
      response: { id: 'chatcmpl-1' },
    });
    expect(await holdCall(t.db, { ...base, callId: randomUUID(), amount: 10n })).toMatchObject({
      outcome: 'replay',
      callId: first,
      response: { id: 'chatcmpl-1' },
    });
    // A key whose hold is refused is not kept: the same key can be used once credits are there.
    const big = { ...base, idempotency: { key: 'k-2', requestHash: 'h2' } };
    expect(await holdCall(t.db, { ...big, callId: randomUUID(), amount: 1_000n })).toMatchObject({
      outcome: 'refused',
    });
    expect(await holdCall(t.db, { ...big, callId: randomUUID(), amount: 10n })).toEqual({ outcome: 'held' });
    expect(await getBalance(t.db, 'lic-4')).toMatchObject({ posted: 47n, pending: 10n });
  });

  it('a group of settlements is one statement, each exactly once: a replayed group changes nothing', async () => {
    await license('lic-g1', 1_000n);
    await license('lic-g2', 1_000n);
    const calls = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    for (const [i, callId] of calls.entries()) {
      await holdCall(t.db, {
        callId,
        licenseId: i % 2 ? 'lic-g2' : 'lic-g1',
        fineTuneId,
        model: 'ft:m',
        amount: 50n,
      });
    }
    await settleCall(t.db, { callId: calls[0] as string, amount: 5n, promptTokens: 10, completionTokens: 1 });
    await releaseCall(t.db, calls[3] as string);
    const group = calls.map((callId) => ({
      callId,
      amount: 7n,
      promptTokens: 70,
      completionTokens: 7,
      response: { id: `chatcmpl-${callId}`, note: 'quote " comma , brace }' },
    }));
    const first = await settleCalls(t.db, group);
    expect([...first.values()].map((r) => r.outcome)).toEqual(
      expect.arrayContaining(['already', 'settled', 'settled', 'released']),
    );
    expect(first.get(calls[0] as string)).toEqual({ outcome: 'already', held: 50n, charged: 5n });
    const again = await settleCalls(t.db, group);
    expect(again.get(calls[1] as string)).toEqual({ outcome: 'already', held: 50n, charged: 7n });
    expect(await getBalance(t.db, 'lic-g1')).toMatchObject({ posted: 1_000n - 5n - 7n, pending: 0n });
    expect(await getBalance(t.db, 'lic-g2')).toMatchObject({ posted: 1_000n - 7n, pending: 0n });
    expect(await clean()).toEqual([]);
  });

  it('a group settles as the same calls settled one by one: outcomes, charges, balances, usage rows, kept answers', async () => {
    // Two licenses with the same history; lic-set-a's calls are settled as one group (set-based,
    // migration 0085), lic-set-b's one by one (inference_settle). Every kind of call a group can meet:
    // fresh, over its hold, already settled, released, expired before its usage came, unknown, the same
    // call twice, one with an Idempotency-Key answer to keep, and charges that end below zero.
    const outcomes: Array<Array<string | bigint | undefined>> = [];
    const balances = [];
    for (const lic of ['lic-set-a', 'lic-set-b']) {
      await license(lic, 1_000n);
      const call = () => randomUUID();
      const calls = {
        fresh: call(),
        over: call(),
        settled: call(),
        released: call(),
        expired: call(),
        unknown: call(),
        keyed: call(),
        big: call(),
      };
      const hold = (callId: string, amount: bigint, key?: string) =>
        holdCall(t.db, {
          callId,
          licenseId: lic,
          fineTuneId,
          model: 'ft:m',
          amount,
          ...(key ? { idempotency: { key, requestHash: 'h' } } : {}),
        });
      for (const c of [calls.fresh, calls.over, calls.settled, calls.released, calls.expired])
        await hold(c, 100n);
      await hold(calls.keyed, 100n, `key-${lic}`);
      await hold(calls.big, 300n);
      await settleCall(t.db, { callId: calls.settled, amount: 11n, promptTokens: 1, completionTokens: 1 });
      await releaseCall(t.db, calls.released);
      expect(await expireHold(t.db, calls.expired, 0)).toBe('released');
      const usage = (callId: string, amount: bigint, response?: unknown) => ({
        callId,
        amount,
        promptTokens: Number(amount) * 10,
        completionTokens: 3,
        ...(response !== undefined ? { response } : {}),
      });
      const group = [
        usage(calls.fresh, 40n),
        usage(calls.over, 130n),
        usage(calls.settled, 12n),
        usage(calls.released, 13n),
        usage(calls.expired, 14n),
        usage(calls.unknown, 15n),
        usage(calls.fresh, 41n),
        usage(calls.keyed, 16n, { id: 'chatcmpl-kept', note: 'quote " brace }' }),
        usage(calls.big, 900n),
      ];
      // One by one in order; a repeated call keeps its first answer, as the group reports it once.
      const results = new Map<string, SettleResult>();
      if (lic === 'lic-set-a') for (const [id, r] of await settleCalls(t.db, group)) results.set(id, r);
      else
        for (const u of group) {
          const r = await settleCall(t.db, u);
          if (!results.has(u.callId)) results.set(u.callId, r);
        }
      outcomes.push(
        Object.values(calls).flatMap((id) => {
          const r = results.get(id);
          return [
            r?.outcome,
            r && 'held' in r ? r.held : undefined,
            r && 'charged' in r ? r.charged : undefined,
          ];
        }),
      );
      balances.push(await getBalance(t.db, lic));
      const kept = await t.db
        .selectFrom('inference_idempotency')
        .select('response')
        .where('call_id', '=', calls.keyed)
        .executeTakeFirstOrThrow();
      expect(kept.response).toEqual({ id: 'chatcmpl-kept', note: 'quote " brace }' });
      const used = await t.db
        .selectFrom('inference_usage')
        .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.sum<string>('credits').as('credits')])
        .where('license_id', '=', lic)
        .executeTakeFirstOrThrow();
      expect(used).toEqual({ n: '6', credits: String(40 + 130 + 11 + 14 + 16 + 900) });
    }
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]).toEqual([
      'settled',
      100n,
      40n,
      'settled',
      100n,
      130n,
      'already',
      100n,
      11n,
      'released',
      100n,
      undefined,
      'settled',
      100n,
      14n,
      'no_hold',
      undefined,
      undefined,
      'settled',
      100n,
      16n,
      'settled',
      300n,
      900n,
    ]);
    expect(balances[0]).toEqual(balances[1]);
    // 1,000 − (40 + 130 + 11 + 14 + 16 + 900) = −111: below zero, so blocked until a top-up.
    expect(balances[0]).toMatchObject({ posted: -111n, pending: 0n, overageBlocked: true });
    expect(await clean()).toEqual([]);
  });

  it('a group of holds admits each call as alone, in arrival order: a refused call takes nothing', async () => {
    // lic-hg-a's holds as one group (migration 0086), lic-hg-b's one by one: the same answers and balances.
    const answers = [];
    for (const lic of ['lic-hg-a', 'lic-hg-b']) {
      await license(lic, 100n);
      const inputs = [60n, 50n, 30n, 10n, 1n].map((amount) => ({
        callId: randomUUID(),
        licenseId: lic,
        fineTuneId,
        model: 'ft:m',
        amount,
      }));
      // A license nobody granted anything (no account row) is refused with nothing available.
      inputs.splice(2, 0, {
        callId: randomUUID(),
        licenseId: 'lic-hg-none',
        fineTuneId,
        model: 'ft:m',
        amount: 1n,
      });
      const results = new Map<string, HoldResult>();
      if (lic === 'lic-hg-a')
        for (const [id, r] of await holdCalls(t.db, inputs, { durable: false })) results.set(id, r);
      else for (const i of inputs) results.set(i.callId, await holdCall(t.db, i));
      answers.push(inputs.map((i) => results.get(i.callId)));
      expect(await getBalance(t.db, lic)).toMatchObject({ posted: 100n, pending: 100n, available: 0n });
    }
    expect(answers[0]).toEqual([
      { outcome: 'held' },
      { outcome: 'refused', available: 40n, required: 50n, overageBlocked: false },
      { outcome: 'refused', available: 0n, required: 1n, overageBlocked: false },
      { outcome: 'held' },
      { outcome: 'held' },
      { outcome: 'refused', available: 0n, required: 1n, overageBlocked: false },
    ]);
    expect(answers[1]).toEqual(answers[0]);
    expect(await clean()).toEqual([]);
  });

  it('the auditor names a usage that resolves something other than a hold', async () => {
    await license('lic-5', 10n);
    await t.db
      .insertInto('ledger_transfers')
      .values({
        id: 'usage-bogus',
        kind: 'usage',
        debit_account_id: 'license-lic-5',
        credit_account_id: 'system-inference-1',
        amount: '1',
        pending_id: 'grant-seed-lic-5',
        license_id: 'lic-5',
      })
      .execute();
    const invariants = (await clean()).map((v) => v.invariant);
    expect(invariants).toContain('a reservation resolves by a matching post or void');
    expect(invariants).toContain('a metered inference call is charged once, as its usage row says');
    expect(invariants).toContain('cached balances equal the sum of their entries');
  });
});
