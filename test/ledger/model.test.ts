import { randomUUID } from 'node:crypto';
import type { Db } from '@tuneline/db';
import * as ledger from '@tuneline/ledger';
import fc from 'fast-check';
import { expect } from 'vitest';
import { it } from '../support/fixtures.ts';

/**
 * Model-based test: random sequences of grant, reserve, post (under, exact, over the reservation),
 * void, duplicates (small id pools) and exact replays of earlier operations, run against Postgres and
 * against a tiny in-memory model of the rules. Every outcome must match the model, and after each
 * sequence the balances match and the auditor finds nothing.
 */

type AbstractOp =
  | { type: 'grant'; grant: number; license: number; amount: number }
  | { type: 'reserve'; ft: number; license: number; amount: number; model: number }
  | {
      type: 'post';
      ft: number;
      mode: 'under' | 'exact' | 'over';
      delta: number;
      tokens: number;
      ghost: boolean;
    }
  | { type: 'void'; ft: number; ghost: boolean }
  | { type: 'replay'; index: number };

type Op =
  | { type: 'grant'; grantId: string; licenseId: string; amount: bigint }
  | { type: 'reserve'; fineTuneId: string; licenseId: string; amount: bigint; model: string }
  | { type: 'post'; fineTuneId: string; amount: bigint; tokens: bigint; model: string }
  | { type: 'void'; fineTuneId: string };

type Outcome = { value: unknown } | { error: 'conflict' | 'not_found' };

interface Reservation {
  licenseId: string;
  amount: bigint;
  model: string;
  resolution?: { kind: 'post'; amount: bigint; tokens: bigint; model: string } | { kind: 'void' };
}

class Model {
  accounts = new Map<string, { posted: bigint; pending: bigint; blocked: boolean }>();
  grants = new Map<string, { licenseId: string; amount: bigint }>();
  reservations = new Map<string, Reservation>();

  account(id: string) {
    let a = this.accounts.get(id);
    if (!a) {
      a = { posted: 0n, pending: 0n, blocked: false };
      this.accounts.set(id, a);
    }
    return a;
  }

  apply(op: Op): Outcome {
    switch (op.type) {
      case 'grant': {
        const g = this.grants.get(op.grantId);
        if (g)
          return g.licenseId === op.licenseId && g.amount === op.amount
            ? { value: undefined }
            : { error: 'conflict' };
        this.grants.set(op.grantId, { licenseId: op.licenseId, amount: op.amount });
        const a = this.account(op.licenseId);
        a.posted += op.amount;
        a.blocked = a.blocked && a.posted - a.pending < 0n;
        return { value: undefined };
      }
      case 'reserve': {
        const r = this.reservations.get(op.fineTuneId);
        if (r) {
          const same = r.licenseId === op.licenseId && r.amount === op.amount && r.model === op.model;
          return same ? { value: { ok: true } } : { error: 'conflict' };
        }
        const a = this.accounts.get(op.licenseId) ?? { posted: 0n, pending: 0n, blocked: false };
        const available = a.posted - a.pending;
        if (a.blocked)
          return { value: { ok: false, available, required: op.amount, reason: 'overage_blocked' } };
        if (available < op.amount) {
          return { value: { ok: false, available, required: op.amount, reason: 'insufficient_credits' } };
        }
        this.account(op.licenseId).pending += op.amount;
        this.reservations.set(op.fineTuneId, { licenseId: op.licenseId, amount: op.amount, model: op.model });
        return { value: { ok: true } };
      }
      case 'post': {
        const r = this.reservations.get(op.fineTuneId);
        if (!r) return { error: 'not_found' };
        const posted = minBig(op.amount, r.amount);
        const result = { charged: op.amount, released: r.amount - posted, overage: op.amount - posted };
        if (r.resolution) {
          const p = r.resolution;
          const same =
            p.kind === 'post' && p.amount === op.amount && p.tokens === op.tokens && p.model === op.model;
          return same ? { value: result } : { error: 'conflict' };
        }
        r.resolution = { kind: 'post', amount: op.amount, tokens: op.tokens, model: op.model };
        const a = this.account(r.licenseId);
        a.pending -= r.amount;
        a.posted -= op.amount;
        a.blocked = a.blocked || a.posted - a.pending < 0n;
        return { value: result };
      }
      case 'void': {
        const r = this.reservations.get(op.fineTuneId);
        if (!r) return { error: 'not_found' };
        if (r.resolution)
          return r.resolution.kind === 'void' ? { value: { released: r.amount } } : { error: 'conflict' };
        r.resolution = { kind: 'void' };
        this.account(r.licenseId).pending -= r.amount;
        return { value: { released: r.amount } };
      }
    }
  }
}

async function runReal(db: Db, op: Op): Promise<Outcome> {
  try {
    const value = await db.transaction().execute(async (tx) => {
      switch (op.type) {
        case 'grant':
          return ledger.grantCredits(tx, op);
        case 'reserve':
          return ledger.reserveCredits(tx, op);
        case 'post':
          return ledger.postReservation(tx, op);
        case 'void':
          return ledger.voidReservation(tx, op);
      }
    });
    return { value };
  } catch (err) {
    if (err instanceof ledger.LedgerConflictError) return { error: 'conflict' };
    if (err instanceof ledger.LedgerNotFoundError) return { error: 'not_found' };
    throw err;
  }
}

const abstractOp: fc.Arbitrary<AbstractOp> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('grant' as const),
      grant: fc.nat(4),
      license: fc.nat(1),
      amount: fc.nat(500),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('reserve' as const),
      ft: fc.nat(5),
      license: fc.nat(1),
      amount: fc.nat(250),
      model: fc.nat(1),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('post' as const),
      ft: fc.nat(5),
      mode: fc.constantFrom('under' as const, 'exact' as const, 'over' as const),
      delta: fc.nat(300),
      tokens: fc.nat(1_000_000),
      // Mostly aim at a reservation that exists; sometimes at any id (not found, or resolved already).
      ghost: fc.nat(4).map((n) => n === 0),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('void' as const), ft: fc.nat(5), ghost: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('replay' as const), index: fc.nat(50) }) },
);

/** A post or void aims at the ft-th existing reservation unless it is a `ghost` (any id of the pool). */
function target(model: Model, fineTunes: string[], ft: number, ghost: boolean): string {
  const reserved = [...model.reservations.keys()];
  if (ghost || reserved.length === 0) return fineTunes[ft] as string;
  return reserved[ft % reserved.length] as string;
}

it('random operation sequences match the model and always pass the audit', async ({ db }) => {
  await fc.assert(
    fc.asyncProperty(fc.array(abstractOp, { minLength: 15, maxLength: 40 }), async (ops) => {
      // Fresh ids per sequence: each run starts from empty accounts.
      const run = randomUUID().slice(0, 8);
      const licenses = [0, 1].map((i) => `lic-${run}-${i}`);
      const fineTunes = Array.from({ length: 6 }, () => randomUUID());
      const model = new Model();
      const history: Op[] = [];
      for (const abstract of ops) {
        let op: Op;
        if (abstract.type === 'replay') {
          if (history.length === 0) continue;
          op = history[abstract.index % history.length] as Op;
        } else if (abstract.type === 'grant') {
          op = {
            type: 'grant',
            grantId: `${run}-${abstract.grant}`,
            licenseId: licenses[abstract.license] as string,
            amount: BigInt(abstract.amount),
          };
        } else if (abstract.type === 'reserve') {
          op = {
            type: 'reserve',
            fineTuneId: fineTunes[abstract.ft] as string,
            licenseId: licenses[abstract.license] as string,
            amount: BigInt(abstract.amount),
            model: `model-${abstract.model}`,
          };
        } else if (abstract.type === 'post') {
          const fineTuneId = target(model, fineTunes, abstract.ft, abstract.ghost);
          const reserved = model.reservations.get(fineTuneId)?.amount ?? 0n;
          const delta = BigInt(abstract.delta);
          const amount =
            abstract.mode === 'exact'
              ? reserved
              : abstract.mode === 'over'
                ? reserved + delta
                : reserved > delta
                  ? reserved - delta
                  : 0n;
          op = {
            type: 'post',
            fineTuneId,
            amount,
            tokens: BigInt(abstract.tokens),
            model: model.reservations.get(fineTuneId)?.model ?? 'model-0',
          };
        } else {
          op = { type: 'void', fineTuneId: target(model, fineTunes, abstract.ft, abstract.ghost) };
        }
        history.push(op);
        const expected = model.apply(op);
        const actual = await runReal(db, op);
        expect(
          actual,
          JSON.stringify(op, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
        ).toEqual(expected);
      }
      for (const licenseId of licenses) {
        const a = model.accounts.get(licenseId) ?? { posted: 0n, pending: 0n, blocked: false };
        expect(await ledger.getBalance(db, licenseId)).toEqual({
          posted: a.posted,
          pending: a.pending,
          available: a.posted - a.pending,
          overageBlocked: a.blocked,
        });
        const log = await ledger.usageLog(db, licenseId);
        const last = log.at(-1);
        expect(last ? [last.posted, last.available] : [0n, 0n]).toEqual([a.posted, a.posted - a.pending]);
      }
      expect((await ledger.auditLedger(db)).violations).toEqual([]);
    }),
    { numRuns: 50 },
  );
}, 120_000);

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
