import { randomUUID } from 'node:crypto';
import { createDb, type Db } from '@tuneline/db';
import {
  auditLedger,
  getBalance,
  grantCredits,
  LedgerConflictError,
  LedgerNotFoundError,
  postReservation,
  reserveCredits,
  usageLog,
  voidReservation,
} from '@tuneline/ledger';
import { sql } from 'kysely';
import { describe, expect } from 'vitest';
import type { TestDatabase } from '../support/context.ts';
import { it } from '../support/fixtures.ts';

const lic = () => `lic-${randomUUID().slice(0, 8)}`;

/**
 * Ten rounds of a race on a fresh 100-credit reservation of a license granted 10,000, between two
 * sessions of their own (warmed up, so both are connected when a round starts); the ledger must audit
 * clean afterwards. Returns the license.
 */
async function raceOnReservations(
  database: TestDatabase,
  round: (ctx: { p1: Db; p2: Db; ft: string; license: string }) => Promise<void>,
): Promise<string> {
  const license = lic();
  await grantCredits(database.db, { grantId: `${license}-1`, licenseId: license, amount: 10_000n });
  const [p1, p2] = [createDb(database.url, { max: 1 }), createDb(database.url, { max: 1 })];
  try {
    await Promise.all([sql`select 1`.execute(p1), sql`select 1`.execute(p2)]);
    for (let i = 0; i < 10; i++) {
      const ft = randomUUID();
      await reserveCredits(database.db, { fineTuneId: ft, licenseId: license, amount: 100n, model: 'm' });
      await round({ p1, p2, ft, license });
    }
  } finally {
    await Promise.all([p1.destroy(), p2.destroy()]);
  }
  await expectClean(database.db);
  return license;
}

/** One of two racing resolutions of a reservation succeeded; the other was refused as a conflict. */
function expectOneWinner(outcomes: PromiseSettledResult<unknown>[]): void {
  expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  const lost = outcomes.filter((o) => o.status === 'rejected');
  expect(lost).toHaveLength(1);
  expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(LedgerConflictError);
}

async function expectClean(db: Db) {
  const { violations } = await auditLedger(db);
  expect(violations).toEqual([]);
}

describe('ledger operations', () => {
  it('grant, reserve, post under the reservation: charge, release, balances and usage log', async ({
    db,
  }) => {
    const license = lic();
    const ft = randomUUID();
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: 1000n, memo: 'welcome' });
    expect(
      await reserveCredits(db, { fineTuneId: ft, licenseId: license, amount: 300n, model: 'm' }),
    ).toEqual({
      ok: true,
    });
    expect(await getBalance(db, license)).toEqual({
      posted: 1000n,
      pending: 300n,
      available: 700n,
      overageBlocked: false,
    });
    const result = await postReservation(db, { fineTuneId: ft, amount: 120n, tokens: 40_000n, model: 'm' });
    expect(result).toEqual({ charged: 120n, released: 180n, overage: 0n });
    expect(await getBalance(db, license)).toEqual({
      posted: 880n,
      pending: 0n,
      available: 880n,
      overageBlocked: false,
    });
    const log = await usageLog(db, license);
    expect(log.map((e) => [e.kind, e.amount, e.posted, e.available])).toEqual([
      ['grant', 1000n, 1000n, 1000n],
      ['reservation', 300n, 1000n, 700n],
      ['charge', 120n, 880n, 700n],
      ['release', 180n, 880n, 880n],
    ]);
    expect(log[2]).toMatchObject({ fineTuneId: ft, model: 'm', tokens: 40_000n });
    await expectClean(db);
  });

  it('replays succeed without effect; the same id with other content is a LedgerConflictError', async ({
    db,
  }) => {
    const license = lic();
    const ft = randomUUID();
    const grant = { grantId: `${license}-g`, licenseId: license, amount: 500n };
    await grantCredits(db, grant);
    await grantCredits(db, grant);
    await expect(grantCredits(db, { ...grant, amount: 501n })).rejects.toBeInstanceOf(LedgerConflictError);
    const reserve = { fineTuneId: ft, licenseId: license, amount: 100n, model: 'm' };
    await reserveCredits(db, reserve);
    expect(await reserveCredits(db, reserve)).toEqual({ ok: true });
    await expect(reserveCredits(db, { ...reserve, amount: 99n })).rejects.toBeInstanceOf(LedgerConflictError);
    const post = { fineTuneId: ft, amount: 100n, tokens: 10n, model: 'm' };
    const first = await postReservation(db, post);
    expect(await postReservation(db, post)).toEqual(first);
    await expect(postReservation(db, { ...post, amount: 90n })).rejects.toBeInstanceOf(LedgerConflictError);
    await expect(voidReservation(db, { fineTuneId: ft })).rejects.toBeInstanceOf(LedgerConflictError);
    await expect(voidReservation(db, { fineTuneId: randomUUID() })).rejects.toBeInstanceOf(
      LedgerNotFoundError,
    );
    expect(await getBalance(db, license)).toMatchObject({ posted: 400n, pending: 0n });
    await expectClean(db);
  });

  it('overage: charged in full; uncovered overage blocks reservations until a top-up covers it', async ({
    db,
  }) => {
    const license = lic();
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: 200n });
    await reserveCredits(db, { fineTuneId: a, licenseId: license, amount: 150n, model: 'm' });
    // Covered overage: 170 of 200 posted, not blocked.
    expect(await postReservation(db, { fineTuneId: a, amount: 170n, tokens: 1n, model: 'm' })).toEqual({
      charged: 170n,
      released: 0n,
      overage: 20n,
    });
    expect(await getBalance(db, license)).toMatchObject({ available: 30n, overageBlocked: false });
    await reserveCredits(db, { fineTuneId: b, licenseId: license, amount: 30n, model: 'm' });
    await postReservation(db, { fineTuneId: b, amount: 80n, tokens: 1n, model: 'm' });
    expect(await getBalance(db, license)).toEqual({
      posted: -50n,
      pending: 0n,
      available: -50n,
      overageBlocked: true,
    });
    const blocked = await grantCredits(db, {
      grantId: `${license}-2`,
      licenseId: license,
      amount: 40n,
    }).then(() => reserveCredits(db, { fineTuneId: c, licenseId: license, amount: 0n, model: 'm' }));
    expect(blocked).toMatchObject({ ok: false, reason: 'overage_blocked', available: -10n });
    await grantCredits(db, { grantId: `${license}-3`, licenseId: license, amount: 20n });
    expect(await getBalance(db, license)).toMatchObject({ available: 10n, overageBlocked: false });
    expect(await reserveCredits(db, { fineTuneId: c, licenseId: license, amount: 10n, model: 'm' })).toEqual({
      ok: true,
    });
    const overage = (await usageLog(db, license)).filter((e) => e.kind === 'overage');
    expect(overage.map((e) => [e.amount, e.memo])).toEqual([
      [20n, 'covered'],
      [50n, 'uncovered 50'],
    ]);
    await expectClean(db);
  });

  it('refuses a reservation beyond the available balance (and for an unknown license)', async ({ db }) => {
    const license = lic();
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: 50n });
    expect(
      await reserveCredits(db, { fineTuneId: randomUUID(), licenseId: license, amount: 51n, model: 'm' }),
    ).toEqual({ ok: false, available: 50n, required: 51n, reason: 'insufficient_credits' });
    expect(
      await reserveCredits(db, { fineTuneId: randomUUID(), licenseId: lic(), amount: 1n, model: 'm' }),
    ).toEqual({
      ok: false,
      available: 0n,
      required: 1n,
      reason: 'insufficient_credits',
    });
  });

  it('ledger rows cannot be updated, deleted or truncated', async ({ db }) => {
    const license = lic();
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: 5n });
    const id = `grant-${license}-1`;
    await expect(sql`UPDATE ledger_transfers SET amount = 6 WHERE id = ${id}`.execute(db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`DELETE FROM ledger_transfers WHERE id = ${id}`.execute(db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`TRUNCATE ledger_transfers CASCADE`.execute(db)).rejects.toThrow(/append-only/);
    const row = await db
      .selectFrom('ledger_transfers')
      .select('amount')
      .where('id', '=', id)
      .executeTakeFirst();
    expect(row?.amount).toBe('5');
  });

  it('the auditor finds a tampered cached balance', async ({ db }) => {
    const license = lic();
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: 5n });
    await sql`UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE license_id = ${license}`.execute(
      db,
    );
    const { violations } = await auditLedger(db);
    expect(violations.map((v) => v.invariant).sort()).toEqual([
      'cached balances equal the sum of their entries',
      'postings sum to zero',
    ]);
    await sql`UPDATE ledger_accounts SET credits_posted = credits_posted - 1 WHERE license_id = ${license}`.execute(
      db,
    );
    await expectClean(db);
  });
});

describe('ledger concurrency (separate pools)', () => {
  it('a license funded for exactly k reservations: of N >> k concurrent ones exactly k succeed', async ({
    db,
    database,
  }) => {
    const k = 5;
    const n = 30;
    const license = lic();
    await grantCredits(db, { grantId: `${license}-1`, licenseId: license, amount: BigInt(k * 100) });
    const pools = Array.from({ length: n }, () => createDb(database.url, { max: 1 }));
    try {
      // Open every connection first so the reservations really race.
      await Promise.all(pools.map((db) => sql`select 1`.execute(db)));
      const results = await Promise.all(
        pools.map((db) =>
          db
            .transaction()
            .execute((tx) =>
              reserveCredits(tx, { fineTuneId: randomUUID(), licenseId: license, amount: 100n, model: 'm' }),
            ),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(k);
      expect(results.filter((r) => !r.ok && r.reason === 'insufficient_credits')).toHaveLength(n - k);
      expect(await getBalance(db, license)).toEqual({
        posted: 500n,
        pending: 500n,
        available: 0n,
        overageBlocked: false,
      });
    } finally {
      await Promise.all(pools.map((db) => db.destroy()));
    }
    await expectClean(db);
  });

  it('concurrent post and void of one reservation: exactly one wins', async ({ database }) => {
    const license = await raceOnReservations(database, async ({ p1, p2, ft }) => {
      const outcomes = await Promise.allSettled([
        p1
          .transaction()
          .execute((tx) => postReservation(tx, { fineTuneId: ft, amount: 60n, tokens: 6n, model: 'm' })),
        p2.transaction().execute((tx) => voidReservation(tx, { fineTuneId: ft })),
      ]);
      expectOneWinner(outcomes);
      const resolutions = await database.db
        .selectFrom('ledger_transfers')
        .select('kind')
        .where('pending_id', '=', `reserve-${ft}`)
        .execute();
      expect(resolutions).toHaveLength(1);
    });
    expect((await getBalance(database.db, license)).pending).toBe(0n);
  });

  it('post and void outside any transaction (each its own statement and commit): exactly one wins', async ({
    database,
  }) => {
    const license = await raceOnReservations(database, async ({ p1, p2, ft }) => {
      expectOneWinner(
        await Promise.allSettled([
          postReservation(p1, { fineTuneId: ft, amount: 60n, tokens: 6n, model: 'm' }),
          voidReservation(p2, { fineTuneId: ft }),
        ]),
      );
    });
    expect((await getBalance(database.db, license)).pending).toBe(0n);
  });

  it('the same post twice at once (two billing workers): both return the one result, charged once', async ({
    database,
  }) => {
    const license = await raceOnReservations(database, async ({ p1, p2, ft }) => {
      // 130 > 100 reserved: the overage transfer must be written once too.
      const post = { fineTuneId: ft, amount: 130n, tokens: 13n, model: 'm' };
      const results = await Promise.all([
        p1.transaction().execute((tx) => postReservation(tx, post)),
        postReservation(p2, post),
      ]);
      expect(results).toEqual([
        { charged: 130n, released: 0n, overage: 30n },
        { charged: 130n, released: 0n, overage: 30n },
      ]);
    });
    expect(await getBalance(database.db, license)).toEqual({
      posted: 10_000n - 10n * 130n,
      pending: 0n,
      available: 10_000n - 10n * 130n,
      overageBlocked: false,
    });
  });
});
