import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureStack, findDatabase, findRedis, StackError } from '@tuneline/devstack';
import pg from 'pg';
import { describe, expect } from 'vitest';
import { databaseUrl, redisUrl } from '../support/context.ts';
import { it } from '../support/fixtures.ts';

const root = () => mkdtempSync(join(tmpdir(), 'tl-stack-'));

describe('devstack', () => {
  it('uses DATABASE_URL and REDIS_URL when given, and starts nothing', async () => {
    const stack = await ensureStack({
      root: root(),
      env: { DATABASE_URL: databaseUrl(), REDIS_URL: redisUrl() },
      log: () => {},
    });
    expect(stack.databaseUrl).toBe(databaseUrl());
    expect(stack.redisUrl).toBe(redisUrl());
    expect(stack.notes.join('\n')).toMatch(/postgres: DATABASE_URL[\s\S]*redis: REDIS_URL/);
    await stack.stop();
  });

  it('stops with what is missing and the options when DATABASE_URL does not answer', async () => {
    const attempt = ensureStack({
      root: root(),
      env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres', REDIS_URL: redisUrl() },
      log: () => {},
    });
    await expect(attempt).rejects.toBeInstanceOf(StackError);
    await expect(attempt).rejects.toThrow(
      /DATABASE_URL is set but Postgres does not answer there[\s\S]*docker compose up -d postgres redis/,
    );
  });

  it('stops with what is missing when REDIS_URL does not answer', async () => {
    const attempt = ensureStack({
      root: root(),
      env: { DATABASE_URL: databaseUrl(), REDIS_URL: 'redis://127.0.0.1:1' },
      log: () => {},
    });
    await expect(attempt).rejects.toThrow(/REDIS_URL is set but Redis does not answer there/);
  });
});

describe('the look-up the CLI uses (running servers only)', () => {
  const dead = { url: 'postgres://postgres@127.0.0.1:1/postgres', note: 'nothing on port 1' };
  const server = () => ({ url: databaseUrl(), note: 'test server' });

  it("prefers the demo's database on the first server that answers, and says where it found it", async ({
    database,
  }) => {
    const demo = database; // migrated, standing in for tuneline_demo
    const found = await findDatabase({ servers: [dead, server()], demoDatabase: demo.name });
    expect(found).toEqual({ url: demo.url, note: `${demo.name} on the test server`, migrated: true });
  });

  it("falls back to the server's own database when there is no demo database, and tells whether it is migrated", async () => {
    const found = await findDatabase({ servers: [server()], demoDatabase: 'tuneline_no_such_database' });
    expect(found.url).toBe(databaseUrl());
    expect(found.note).toBe('test server');
    const probe = new pg.Client({ connectionString: databaseUrl() });
    await probe.connect();
    const migrated = await probe.query(`select to_regclass('public.kysely_migration') is not null as m`);
    await probe.end();
    expect(found.migrated).toBe(migrated.rows[0].m);
  });

  it('with nothing answering, says what to set and how to start one (and where the embedded data is)', async () => {
    const checkout = root();
    mkdirSync(join(checkout, '.tuneline', 'pg'), { recursive: true });
    const attempt = findDatabase({ servers: [dead], root: checkout });
    await expect(attempt).rejects.toBeInstanceOf(StackError);
    await expect(attempt).rejects.toThrow(
      /DATABASE_URL is unset and no Postgres answers \(looked at nothing on port 1\)/,
    );
    await expect(attempt).rejects.toThrow(
      /Set DATABASE_URL=postgres:\/\/[\s\S]*npm run demo[\s\S]*docker compose up -d postgres/,
    );
    await expect(attempt).rejects.toThrow(
      /embedded Postgres keeps its data in .*\.tuneline\/pg, but it runs only while/,
    );
  });

  it('finds Redis the same way, or says to set REDIS_URL', async () => {
    const redis = { url: redisUrl(), note: 'the test redis' };
    expect(await findRedis([{ url: 'redis://127.0.0.1:1', note: 'none' }, redis])).toEqual(redis);
    await expect(findRedis([{ url: 'redis://127.0.0.1:1', note: 'nothing on port 1' }])).rejects.toThrow(
      /REDIS_URL is unset and no Redis answers \(looked at nothing on port 1\)[\s\S]*Set REDIS_URL=/,
    );
  });
});
