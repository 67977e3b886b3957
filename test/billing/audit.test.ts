import { settleFineTune } from '@tuneline/billing';
import { markDeploymentActive, startDeployment } from '@tuneline/db';
import { auditLedger, chargeHostingHours, getBalance } from '@tuneline/ledger';
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

it('the auditor accepts hosting charges (issue 20.1) and holds each to a started hour of its deployment', async () => {
  const hosting = 'a hosting charge is one started hour of its deployment, at its fee';
  const fineTune = await createFineTune(t.db, { grant: 10_000n, reserve: 1_000n, trainedTokens: 1_000n });
  await t.db.transaction().execute((tx) => settleFineTune(tx, fineTune.id));
  const deployment = await startDeployment(t.db, {
    fineTuneId: fineTune.id,
    licenseId: fineTune.license_id,
    provider: 'azure',
    name: `tl-${fineTune.id}`,
    creditsPerHour: 1_700n,
    now: new Date('2026-12-01T10:00:00Z'),
  });
  if (deployment.outcome !== 'started') throw new Error(`deployment ${deployment.outcome}`);
  const d = deployment.deployment;
  await markDeploymentActive(t.db, d.id, new Date('2026-12-01T10:05:00Z'));
  // 2 h 30 min served: three started hours, charged once however often the sweep asks (training: 3).
  const at = new Date('2026-12-01T12:35:00Z');
  expect((await chargeHostingHours(t.db, d, at)).charged).toBe(3);
  expect((await chargeHostingHours(t.db, d, at)).charged).toBe(0);
  expect(await invariants()).not.toContain(hosting);
  expect(await invariants()).not.toContain('cached balances equal the sum of their entries');
  expect((await getBalance(t.db, fineTune.license_id)).posted).toBe(10_000n - 3n - 3n * 1_700n);

  // An hour the deployment never counted (written past the ledger functions) is caught.
  await sql`INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id, fine_tune_id)
    VALUES (${`hosting-${d.id}-7`}, 'hosting', ${`license-${fineTune.license_id}`}, 'system-revenue-0', 1700,
      ${fineTune.license_id}, ${fineTune.id}::uuid)`.execute(t.db);
  const violations = (await auditLedger(t.db)).violations.filter((v) => v.invariant === hosting);
  expect(violations.map((v) => v.detail)).toEqual([
    `hosting charge hosting-${d.id}-7: hour 7 beyond the 3 the deployment counts`,
    `deployment ${d.id} counts 3 charged hour(s), the ledger holds 4`,
  ]);
});
