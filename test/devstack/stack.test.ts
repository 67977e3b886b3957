import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureStack, StackError } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';
import { databaseUrl, redisUrl } from '../support/context.ts';

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
