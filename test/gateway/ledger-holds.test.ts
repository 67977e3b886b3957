import { randomUUID } from 'node:crypto';
import {
  auditLedger,
  getBalance,
  grantCredits,
  holdCall,
  releaseCall,
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
