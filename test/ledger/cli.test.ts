import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/context.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

const bin = join(import.meta.dirname, '../../packages/cli/bin/tuneline.mjs');
function tuneline(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, DATABASE_URL: t.url },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('credits grant / show and ledger audit from the command line', async () => {
  expect(tuneline('credits', 'grant', '--license', 'acme', '--amount', '2500', '--id', 'welcome').code).toBe(
    0,
  );
  // Replay: no effect. Same id, other amount: refused.
  expect(tuneline('credits', 'grant', '--license', 'acme', '--amount', '2500', '--id', 'welcome').code).toBe(
    0,
  );
  const conflict = tuneline('credits', 'grant', '--license', 'acme', '--amount', '1', '--id', 'welcome');
  expect(conflict.code).toBe(1);
  expect(conflict.stderr).toMatch(/already exists with other content/);
  expect(tuneline('credits', 'grant', '--license', 'acme', '--amount=0').code).toBe(2);

  const shown = tuneline('credits', 'show', '--license', 'acme', '--json');
  expect(shown.code).toBe(0);
  const parsed = JSON.parse(shown.stdout);
  expect(parsed.balance).toEqual({ posted: '2500', pending: '0', available: '2500', overageBlocked: false });
  expect(parsed.usage.map((e: { transferId: string }) => e.transferId)).toEqual(['grant-welcome']);

  const clean = tuneline('ledger', 'audit', '--json');
  expect(clean.code).toBe(0);
  expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, violations: [] });

  await sql`UPDATE ledger_accounts SET credits_posted = 1 WHERE license_id = 'acme'`.execute(t.db);
  const dirty = tuneline('ledger', 'audit');
  expect(dirty.code).toBe(1);
  expect(dirty.stdout).toMatch(/cached balances equal the sum of their entries/);
}, 120_000);
