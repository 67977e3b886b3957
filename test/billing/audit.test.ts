import { settleFineTune } from '@tuneline/billing';
import { auditLedger } from '@tuneline/ledger';
import { sql } from 'kysely';
import { expect } from 'vitest';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { createFineTune } from './fixtures.ts';

let t: TestDatabase;
test.beforeAll(async ({ database }) => {
  t = database;
});

const invariants = async () => (await auditLedger(t.db)).violations.map((v) => v.invariant).sort();

it('the auditor holds settled fine-tunes to their charge and their reservation', async () => {
  const charged = await createFineTune(t.db, { grant: 10_000n, reserve: 1_000n, trainedTokens: 200_000n });
  await t.db.transaction().execute((tx) => settleFineTune(tx, charged.id));
  expect(await invariants()).toEqual([]);

  // The row claims another charge than the ledger holds.
  await sql`UPDATE fine_tunes SET credits_charged = 1 WHERE id = ${charged.id}`.execute(t.db);
  expect(await invariants()).toEqual([
    'a settled fine-tune is charged ceil(trained_tokens × price / 1e6), once',
  ]);
  await sql`UPDATE fine_tunes SET credits_charged = 600 WHERE id = ${charged.id}`.execute(t.db);
  expect(await invariants()).toEqual([]);

  // Marked settled (and available) without going through the ledger: reservation still pending, no charge.
  const skipped = await createFineTune(t.db, { grant: 10_000n, reserve: 1_000n, trainedTokens: 1_000n });
  await sql`UPDATE fine_tunes SET settled_at = now(), available = true WHERE id = ${skipped.id}`.execute(
    t.db,
  );
  expect(await invariants()).toEqual([
    'a settled fine-tune is charged ceil(trained_tokens × price / 1e6), once',
    'every reservation of a finished fine-tune is resolved exactly once',
  ]);

  // Available although it failed.
  await sql`UPDATE fine_tunes SET settled_at = NULL, available = false WHERE id = ${skipped.id}`.execute(
    t.db,
  );
  const failed = await createFineTune(t.db, {
    status: 'failed',
    grant: 100n,
    reserve: 100n,
    trainedTokens: null,
  });
  await t.db.transaction().execute((tx) => settleFineTune(tx, failed.id));
  await sql`UPDATE fine_tunes SET available = true WHERE id = ${failed.id}`.execute(t.db);
  expect(await invariants()).toEqual(['only a settled succeeded fine-tune is available']);
});
