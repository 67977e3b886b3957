import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { creditsCommand } from '../../packages/cli/src/commands/credits.ts';
import { ledgerCommand } from '../../packages/cli/src/commands/ledger.ts';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

let t: TestDatabase;
test.beforeAll(async ({ database }) => {
  t = database;
  // The commands read DATABASE_URL (this file runs in its own process).
  process.env.DATABASE_URL = t.url;
});

/** Runs a command in-process and captures what it prints. */
async function run(command: typeof creditsCommand, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const [stdout, stderr] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const code = await command
      .run(args)
      .catch((e: unknown) => (e instanceof Error && e.name === 'UsageError' ? 2 : Promise.reject(e)));
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
}

it('credits grant / show and ledger audit', async () => {
  expect(
    (await run(creditsCommand, 'grant', '--license', 'acme', '--amount', '2500', '--id', 'welcome')).code,
  ).toBe(0);
  // Replay: no effect. Same id, other amount: refused.
  expect(
    (await run(creditsCommand, 'grant', '--license', 'acme', '--amount', '2500', '--id', 'welcome')).code,
  ).toBe(0);
  const conflict = await run(
    creditsCommand,
    'grant',
    '--license',
    'acme',
    '--amount',
    '1',
    '--id',
    'welcome',
  );
  expect(conflict.code).toBe(1);
  expect(conflict.stderr).toMatch(/already exists with other content/);
  expect((await run(creditsCommand, 'grant', '--license', 'acme', '--amount=0')).code).toBe(2);
  expect((await run(creditsCommand, 'grant', '--license', 'acme', '--amount', '-5')).code).toBe(2);

  const shown = await run(creditsCommand, 'show', '--license', 'acme', '--json');
  expect(shown.code).toBe(0);
  const parsed = JSON.parse(shown.stdout);
  expect(parsed.balance).toEqual({ posted: '2500', pending: '0', available: '2500', overageBlocked: false });
  expect(parsed.usage.map((e: { transferId: string }) => e.transferId)).toEqual(['grant-welcome']);

  const clean = await run(ledgerCommand, 'audit', '--json');
  expect(clean.code).toBe(0);
  expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, violations: [] });
});

it('`tuneline ledger audit` exits non-zero on a violation', async () => {
  await sql`UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE license_id = 'acme'`.execute(
    t.db,
  );
  const bin = join(import.meta.dirname, '../../packages/cli/bin/tuneline.mjs');
  const r = spawnSync(process.execPath, [bin, 'ledger', 'audit'], {
    env: { ...process.env, DATABASE_URL: t.url },
    encoding: 'utf8',
    timeout: 90_000,
  });
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/cached balances equal the sum of their entries/);
}, 100_000);
