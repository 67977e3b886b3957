import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { redact } from '@tuneline/devstack';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { databaseUrl, redisUrl, type TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { spawnCaptured } from '../support/process.ts';

/**
 * Issue 15: a clone placed where nothing surrounds it keeps the README's promises. The repository's
 * committed state (HEAD) is cloned into a fresh temporary directory: no `shared` folder beside it, no
 * node_modules, no `.tuneline/`. There, the README's own `npm test` installs the dependencies and runs
 * the simulator conformance tests; the Chromium provisioning stops before vitest with its message; and
 * the CLI finds the dev stack's database without DATABASE_URL. Uncommitted changes are not in the clone.
 */

const parent = join(import.meta.dirname, '../..');
let dir: string;
let clone: string;
let conformance: Run;

interface Run {
  code: number | null;
  /** stdout and stderr together, without colours. */
  output: string;
}

/** The environment of a process in the clone: this run's servers, and nothing of the vitest worker. */
function cloneEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VITEST|TEST$|TEST_|CHROMIUM_PATH$|DATABASE_URL$|REDIS_URL$|TUNELINE_)/.test(key))
      env[key] = value;
  }
  return { ...env, ...extra };
}

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawnCaptured(args, { cwd: clone, env });
  const { code } = await child.exit;
  return { code, output: stripVTControlCharacters(child.output()) };
}

/** `npm test -- <args>` in the clone (what npm runs for it). */
const npmTest = (args: string[], env: NodeJS.ProcessEnv) =>
  run(['scripts/bootstrap.mjs', 'test', ...args], env);
const tuneline = (args: string[], env: NodeJS.ProcessEnv) =>
  run(['packages/cli/bin/tuneline.mjs', ...args], env);
/** The servers this run uses, given to the clone's npm test as the user's own. */
const servers = () => ({ DATABASE_URL: databaseUrl(), REDIS_URL: redisUrl() });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tl-clone-'));
  clone = join(dir, 'tuneline');
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: parent, encoding: 'utf8' }).trim();
  // --shared borrows the objects instead of copying them: a clone in about a second.
  execFileSync('git', ['clone', '--quiet', '--shared', '--no-checkout', parent, clone]);
  execFileSync('git', ['checkout', '--quiet', head], { cwd: clone });
  // The first npm test installs the dependencies (pnpm, from its store) and runs the conformance tests.
  // A CHROMIUM_PATH that points nowhere proves these tests neither look for a browser nor install one.
  conformance = await npmTest(
    ['test/simulator/round-trip.test.ts'],
    cloneEnv({ ...servers(), CHROMIUM_PATH: join(dir, 'no-chromium') }),
  );
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a fresh clone with no shared folder beside it', () => {
  it('has nothing beside it, and its own npm test passes the simulator conformance tests', () => {
    expect(existsSync(join(dir, 'shared'))).toBe(false);
    expect(existsSync(join(clone, 'vendor', 'openai', 'openapi.yaml'))).toBe(true);
    const { output } = conformance;
    expect(output, output).toContain('installing dependencies');
    expect(conformance.code, output).toBe(0);
    expect(output).toMatch(/Test Files\s+(\S+\s+)?1 passed/);
    expect(output).not.toMatch(/chromium/i);
  });

  it('stops npm test of the hub test before vitest when no browser can be had, naming what to do', async () => {
    const missing = join(dir, 'no-chromium');
    const result = await npmTest(['test/api/hub'], cloneEnv({ ...servers(), CHROMIUM_PATH: missing }));
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(`CHROMIUM_PATH is set to ${missing}, which is not an executable file`);
    expect(result.output).toContain('apt-get install -y --no-install-recommends chromium');
    expect(result.output).not.toContain('tests (vitest)');
  }, 60_000);

  it("its provisioning finds a browser on PATH, and with none and TUNELINE_NO_INSTALL=1 stops with the package's name", async () => {
    const { ensureChromium } = (await import(
      join(clone, 'packages/devstack/src/chromium.ts')
    )) as typeof import('../../packages/devstack/src/chromium.ts');
    const bin = mkdtempSync(join(dir, 'path-'));
    const noInstall = { PATH: bin, TUNELINE_NO_INSTALL: '1' };
    const attempt = () => ensureChromium({ env: noInstall, paths: [], log: () => {} });
    expect(attempt).toThrow(/No Chromium found[\s\S]*TUNELINE_NO_INSTALL is set/);
    expect(attempt).toThrow(/Debian's chromium package[\s\S]*set CHROMIUM_PATH/);
    writeFileSync(join(bin, 'chromium'), '#!/bin/sh\n');
    chmodSync(join(bin, 'chromium'), 0o755);
    expect(attempt()).toEqual({ path: join(bin, 'chromium'), note: 'chromium on PATH' });
  });

  it('its CLI, without DATABASE_URL, uses the database the dev stack finds and says which on stderr', async () => {
    const { findDatabase } = (await import(
      join(clone, 'packages/devstack/src/index.ts')
    )) as typeof import('../../packages/devstack/src/index.ts');
    // What the clone's look-up sees on this machine decides which of the three answers is right.
    const expected = await findDatabase({ root: clone }).catch((err: Error) => err);
    const results = await Promise.all(
      [
        ['ledger', 'audit'],
        ['credits', 'show', '--license', 'fresh-clone-license'],
      ].map((args) => tuneline(args, cloneEnv())),
    );
    for (const result of results) {
      expect(result.output).not.toContain('Invalid configuration');
      if (expected instanceof Error) {
        expect(result.code, result.output).toBe(78);
        expect(result.output).toMatch(
          /DATABASE_URL is unset and no Postgres answers[\s\S]*Set DATABASE_URL=/,
        );
      } else if (!expected.migrated) {
        expect(result.code, result.output).toBe(78);
        expect(result.output).toContain(
          `Found ${redact(expected.url)} (${expected.note}), but Tuneline's tables are not there`,
        );
      } else {
        expect(result.output).toContain(`tuneline: using ${redact(expected.url)} (found: ${expected.note})`);
        expect([0, 1]).toContain(result.code);
      }
    }
  }, 60_000);

  describe("its CLI's look-up, pointed at servers this test controls", () => {
    const dead = { url: 'postgres://postgres@127.0.0.1:1/postgres', note: 'nothing on port 1' };
    let demo: TestDatabase;
    let withDevStack: typeof import('../../packages/cli/src/stack.ts').withDevStack;
    test.beforeAll(async ({ database }) => {
      ({ withDevStack } = await import(join(clone, 'packages/cli/src/stack.ts')));
      demo = database; // migrated; stands in for tuneline_demo
    });

    /** Runs `withDevStack` and captures what it writes on stderr. */
    async function lookUp(...args: Parameters<typeof withDevStack>) {
      const lines: string[] = [];
      const write = process.stderr.write;
      process.stderr.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof write;
      try {
        const env = await withDevStack(...args);
        return { env, stderr: lines.join('') };
      } finally {
        process.stderr.write = write;
      }
    }

    it("finds the demo's database on the first server that answers, and Redis, and says so", async () => {
      const { env, stderr } = await lookUp(
        { PATH: '/usr/bin' },
        { redis: true, schema: true },
        {
          servers: [dead, { url: databaseUrl(), note: 'test server' }],
          demoDatabase: demo.name,
          redisServers: [{ url: redisUrl(), note: 'test redis' }],
        },
      );
      expect(env).toEqual({ PATH: '/usr/bin', DATABASE_URL: demo.url, REDIS_URL: redisUrl() });
      expect(stderr).toBe(
        `tuneline: using ${redact(demo.url)} (found: ${demo.name} on the test server)\n` +
          `tuneline: using ${redisUrl()} (found: test redis)\n`,
      );
    });

    it('leaves a DATABASE_URL that is set alone and says nothing', async () => {
      const given = { DATABASE_URL: 'postgres://elsewhere/db' };
      expect(await lookUp(given, { schema: true }, { servers: [dead] })).toEqual({ env: given, stderr: '' });
    });

    it('with nothing reachable, says what to set and how to start one', async () => {
      await expect(lookUp({}, { schema: true }, { servers: [dead] })).rejects.toThrow(
        /DATABASE_URL is unset and no Postgres answers[\s\S]*Set DATABASE_URL=postgres:\/\/[\s\S]*npm run demo/,
      );
    });

    it("refuses a found database without Tuneline's tables, naming it and `tuneline migrate`", async () => {
      const empty = `tuneline_test_${Math.floor(Date.now() / 1000)}_empty${process.pid}`;
      const admin = new pg.Client({ connectionString: databaseUrl() });
      await admin.connect();
      await admin.query(`create database "${empty}"`);
      try {
        const server = new URL(databaseUrl());
        server.pathname = `/${empty}`;
        await expect(
          lookUp({}, { schema: true }, { servers: [{ url: server.toString(), note: 'empty' }] }),
        ).rejects.toThrow(
          /Found .* \(empty\), but Tuneline's tables are not there[\s\S]*npx tuneline migrate/,
        );
      } finally {
        await admin.query(`drop database if exists "${empty}"`);
        await admin.end();
      }
    });
  });
});
