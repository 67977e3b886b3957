import { randomUUID } from 'node:crypto';
import { sweepGateway } from '@tuneline/api';
import { listExpiredHolds } from '@tuneline/db';
import { auditLedger, getBalance, holdCall, settleCall } from '@tuneline/ledger';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import {
  type GatedRig,
  simulatorChatCalls,
  startGatedRig,
  licenseWithModel as withModel,
} from './support.ts';

// The gateway's sweep: holds nobody settles expire (released once, visible in the ledger), and
// Idempotency-Keys are forgotten after their retention. Forwarded calls wait at a gate while it is
// shut: a call held there is one whose process stopped between its hold and its settlement.

let rig: GatedRig;
let model: string;
let baseURL: string;

test.beforeAll(async ({ database, prefix }) => {
  rig = await startGatedRig({ database, prefix });
  ({ model, baseURL } = rig);
});

afterAll(async () => {
  await rig?.close();
});

const HOUR = 3_600_000;
const settings = { holdExpiryMs: HOUR, idempotencyRetentionMs: 24 * HOUR };
const later = (ms: number) => new Date(Date.now() + ms);

const licenseWithModel = (id: string, credits = 10_000n) => withModel(rig, { model, baseURL }, id, credits);

const body = () => ({
  model,
  messages: [{ role: 'user' as const, content: 'INVOICE 1009\nTotal: 90.00 EUR' }],
  max_tokens: 100,
});

const transfers = (licenseId: string) =>
  rig.t.db
    .selectFrom('ledger_transfers')
    .select(['id', 'kind', 'amount', 'pending_id', 'memo'])
    .where('license_id', '=', licenseId)
    .where('kind', 'in', ['hold', 'usage', 'release'])
    .orderBy('seq')
    .execute();

/** The call id of the license's one open hold, once the gateway has taken it. */
async function heldCall(licenseId: string): Promise<string> {
  const hold = await waitFor(async () => (await transfers(licenseId)).find((t) => t.kind === 'hold'));
  return hold.id.slice('hold-'.length);
}

const clean = async () =>
  (await auditLedger(rig.t.db)).violations.filter((v) => !v.invariant.includes('settled fine-tune'));

describe('expired holds', () => {
  it('a call abandoned between hold and settle: its hold is released once past the bound, once, as its own release; a usage coming back later is still charged once', async () => {
    const lic = await licenseWithModel('lic-abandoned');
    rig.shutGate();
    const pending = lic.client.chat.completions.create(body());
    const callId = await heldCall(lic.id);
    const held = await getBalance(rig.t.db, lic.id);
    expect(held.pending).toBeGreaterThan(0n);

    // Younger than the bound: kept.
    expect(await sweepGateway(rig.t.db, settings)).toEqual({ expiredHolds: 0, forgottenKeys: 0 });
    expect((await getBalance(rig.t.db, lic.id)).pending).toBe(held.pending);

    // Past it: released by exactly one of three sweeps, two of them racing.
    const sweeps = await Promise.all([
      sweepGateway(rig.t.db, settings, later(HOUR + 60_000)),
      sweepGateway(rig.t.db, settings, later(HOUR + 60_000)),
    ]);
    const again = await sweepGateway(rig.t.db, settings, later(HOUR + 60_000));
    expect([...sweeps, again].reduce((n, s) => n + s.expiredHolds, 0)).toBe(1);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({
      posted: 10_000n,
      pending: 0n,
      available: 10_000n,
    });
    const released = await transfers(lic.id);
    expect(released.map((t) => t.kind)).toEqual(['hold', 'release']);
    expect(released[1]).toMatchObject({ id: `release-${callId}`, amount: held.pending.toString() });
    expect(released[1]?.memo).toMatch(/hold expired, not settled within 3600 s/);
    expect(await listExpiredHolds(rig.t.db, lic.id)).toEqual([
      expect.objectContaining({ call_id: callId, held: held.pending.toString() }),
    ]);
    expect(await clean()).toEqual([]);

    // The call's process comes back: the provider answers, the caller gets it, and the usage is
    // charged once, directly (its hold is gone), never twice.
    rig.openGate();
    const answer = await pending;
    const charged = await rig.t.db
      .selectFrom('inference_usage')
      .select('credits')
      .where('id', '=', callId)
      .executeTakeFirstOrThrow();
    expect(answer.usage?.total_tokens).toBeGreaterThan(0);
    const after = await transfers(lic.id);
    expect(after.map((t) => [t.kind, t.pending_id])).toEqual([
      ['hold', null],
      ['release', `hold-${callId}`],
      ['usage', null],
    ]);
    expect(after[2]?.memo).toMatch(/after its hold expired/);
    const replay = await settleCall(rig.t.db, {
      callId,
      amount: BigInt(charged.credits),
      promptTokens: answer.usage?.prompt_tokens ?? 0,
      completionTokens: answer.usage?.completion_tokens ?? 0,
    });
    expect(replay).toMatchObject({ outcome: 'already', charged: BigInt(charged.credits) });
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({
      posted: 10_000n - BigInt(charged.credits),
      pending: 0n,
    });
    expect(await clean()).toEqual([]);
  });

  it('a process that died right after its hold: released past the bound; settled and released holds are never touched', async () => {
    const lic = await licenseWithModel('lic-died');
    // Settled, then released (the provider does not know the model): each resolved once already.
    expect((await lic.client.chat.completions.create(body())).choices).toHaveLength(1);
    const gone = 'ft:gpt-4o-mini-2024-07-18:gone:sweep1';
    await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
      model: gone,
      active: true,
    });
    await expect(lic.client.chat.completions.create({ ...body(), model: gone })).rejects.toMatchObject({
      status: 502,
    });
    // The hold a dying process took, and nothing after it.
    const dead = randomUUID();
    expect(
      await holdCall(rig.t.db, {
        callId: dead,
        licenseId: lic.id,
        fineTuneId: lic.fineTuneId,
        model,
        amount: 50n,
      }),
    ).toEqual({ outcome: 'held' });
    const before = await getBalance(rig.t.db, lic.id);
    expect(before.pending).toBe(50n);

    expect((await sweepGateway(rig.t.db, settings, later(HOUR + 60_000))).expiredHolds).toBe(1);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: before.posted, pending: 0n });
    const kinds = (await transfers(lic.id)).map((t) =>
      `${t.kind} ${t.id.split('-').slice(1).join('-') === dead ? 'dead' : ''}`.trim(),
    );
    expect(kinds).toEqual(['hold', 'usage', 'hold', 'release', 'hold dead', 'release dead']);
    // The sweep's mark has moved past every transfer it looked at (up to the dead hold; its release
    // came after the look): the next sweep starts there.
    const mark = await rig.t.db
      .selectFrom('inference_hold_sweep')
      .select('swept_seq')
      .executeTakeFirstOrThrow();
    const deadHold = await rig.t.db
      .selectFrom('ledger_transfers')
      .select('seq')
      .where('id', '=', `hold-${dead}`)
      .executeTakeFirstOrThrow();
    expect(BigInt(mark.swept_seq)).toBeGreaterThanOrEqual(BigInt(deadHold.seq));
    expect((await sweepGateway(rig.t.db, settings, later(HOUR + 60_000))).expiredHolds).toBe(0);
    expect(await clean()).toEqual([]);
  });
});

describe('Idempotency-Key retention', () => {
  const withKey = (key: string) => ({ headers: { 'Idempotency-Key': key } });
  const keyRow = (licenseId: string, key: string) =>
    rig.t.db
      .selectFrom('inference_idempotency')
      .select(['call_id', 'response'])
      .where('license_id', '=', licenseId)
      .where('key', '=', key)
      .executeTakeFirst();

  it('replays within the retention; after it the key is forgotten, once, and a retry is a new call', async () => {
    const lic = await licenseWithModel('lic-keys');
    const first = await lic.client.chat.completions.create(body(), withKey('k-1'));
    const calls = simulatorChatCalls(rig.sim);
    expect((await lic.client.chat.completions.create(body(), withKey('k-1'))).id).toBe(first.id);
    expect(simulatorChatCalls(rig.sim)).toBe(calls);

    expect((await sweepGateway(rig.t.db, settings, later(23 * HOUR))).forgottenKeys).toBe(0);
    expect(await keyRow(lic.id, 'k-1')).toBeDefined();
    expect((await sweepGateway(rig.t.db, settings, later(24 * HOUR + 60_000))).forgottenKeys).toBe(1);
    expect(await keyRow(lic.id, 'k-1')).toBeUndefined();
    expect((await sweepGateway(rig.t.db, settings, later(24 * HOUR + 60_000))).forgottenKeys).toBe(0);

    const retried = await lic.client.chat.completions.create(body(), withKey('k-1'));
    expect(simulatorChatCalls(rig.sim)).toBe(calls + 1);
    expect(retried.id).not.toBe(first.id);
    const usage = await rig.t.db
      .selectFrom('inference_usage')
      .select('id')
      .where('license_id', '=', lic.id)
      .execute();
    expect(usage).toHaveLength(2);
    expect(await clean()).toEqual([]);
  });

  it('keeps the key of a call still in flight, however old, and forgets it once the call is settled', async () => {
    const lic = await licenseWithModel('lic-key-inflight');
    // A retention shorter than the hold expiry, so an in-flight key outlives its retention.
    const short = { holdExpiryMs: 48 * HOUR, idempotencyRetentionMs: HOUR };
    rig.shutGate();
    const pending = lic.client.chat.completions.create(body(), withKey('k-slow'));
    await heldCall(lic.id);
    await sweepGateway(rig.t.db, short, later(2 * HOUR));
    expect(await keyRow(lic.id, 'k-slow')).toMatchObject({ response: null });
    rig.openGate();
    await pending;
    await sweepGateway(rig.t.db, short, later(2 * HOUR));
    expect(await keyRow(lic.id, 'k-slow')).toBeUndefined();
  });
});
