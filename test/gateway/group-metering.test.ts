import { inferenceUsageStage } from '@tuneline/billing';
import { auditLedger, getBalance } from '@tuneline/ledger';
import { createLogger } from '@tuneline/runtime';
import { sql } from 'kysely';
import { afterAll, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import type { StageRunner } from '../support/stage-runner.ts';
import { ADMIN_KEY, type GatedRig, startGatedRig } from './support.ts';

// Settlements that arrive together are written as one group (one statement). This proves the grouping
// loses and doubles nothing when writes fail: calls are held at a gate until all are forwarded, so
// their settlements arrive together.
let forwarded = 0;
let rig: GatedRig;
let model: string;
let runner: StageRunner;
const log = createLogger('billing', 'silent');

test.beforeAll(async ({ database, prefix, stages }) => {
  runner = stages;
  rig = await startGatedRig({ database, prefix }, () => forwarded++);
  model = rig.model;
});

afterAll(async () => {
  await runner?.closeAll(5_000);
  await rig?.close();
});

it('grouped settlements under failing writes: every call charged exactly once, through the group, one by one or the outbox', async () => {
  const lic = await makeLicense(rig.t.db, 'lic-group', 1_000_000n);
  await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
    model,
    active: true,
  });
  // The first two usage inserts fail in Postgres: a group (or a single settlement) and the next write.
  await sql
    .raw(`
    CREATE SEQUENCE gw_group_fail_seq;
    CREATE FUNCTION gw_group_fail() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('gw_group_fail_seq') <= 2 THEN RAISE EXCEPTION 'injected failure of the metering write'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER gw_group_fail BEFORE INSERT ON ledger_transfers FOR EACH ROW WHEN (NEW.kind = 'usage')
      EXECUTE FUNCTION gw_group_fail();`)
    .execute(rig.t.db);
  rig.shutGate();
  forwarded = 0;
  const calls = Array.from({ length: 8 }, (_, i) =>
    rig.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${lic.key}` },
      payload: {
        model,
        messages: [{ role: 'user', content: `INVOICE ${i}\nTotal: ${i}0.00 EUR` }],
        max_tokens: 100,
      },
    }),
  );
  await waitFor(async () => forwarded === 8, 15_000, 'all calls forwarded');
  rig.openGate();
  const answers = await Promise.all(calls);
  expect(answers.map((a) => a.statusCode)).toEqual(Array(8).fill(200));

  // Whatever was deferred, billing applies it.
  await runner.start(
    inferenceUsageStage,
    { db: rig.t.db, log },
    { concurrency: 2, timers: false, outboxIntervalMs: 1_000 },
  );
  const rows = await waitFor(
    async () => {
      const r = await rig.t.db
        .selectFrom('inference_usage')
        .selectAll()
        .where('license_id', '=', lic.id)
        .execute();
      return r.length >= 8 ? r : undefined;
    },
    15_000,
    'all eight calls metered',
  );
  expect(rows).toHaveLength(8);
  const charged = rows.reduce((sum, r) => sum + BigInt(r.credits), 0n);
  expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 1_000_000n - charged, pending: 0n });
  const usages = await rig.t.db
    .selectFrom('ledger_transfers')
    .select('id')
    .where('license_id', '=', lic.id)
    .where('kind', '=', 'usage')
    .execute();
  expect(usages).toHaveLength(8);
  const violations = (await auditLedger(rig.t.db)).violations.filter(
    (v) => !v.invariant.includes('settled fine-tune'),
  );
  expect(violations).toEqual([]);
  // Some settlements were written as a group (not all one by one).
  const metrics = await rig.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  const count = (le: string) =>
    Number(
      new RegExp(`tuneline_gateway_settle_group_size_bucket\\{le="${le}",service="api"\\} (\\d+)`).exec(
        metrics.body,
      )?.[1],
    );
  expect(count('\\+Inf')).toBeGreaterThan(count('1'));
});
