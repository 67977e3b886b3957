import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';

/** `tuneline api` as its own process, configured from the environment. */

const ADMIN = 'cli-admin-key-0123456789abcdef';
const BIN = join(import.meta.dirname, '../../packages/cli/bin/tuneline.mjs');

let t: TestDatabase;
let child: ChildProcess;
let base: string;
let output = '';

beforeAll(async () => {
  t = await createTestDatabase();
  child = spawn(process.execPath, [BIN, 'api', '--port', '0'], {
    env: {
      ...process.env,
      DATABASE_URL: t.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: testPrefix(),
      ADMIN_API_KEY: ADMIN,
      API_HOST: '127.0.0.1',
      PROVIDER: 'simulator',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  base = await waitFor(
    async () => {
      const line = output.split('\n').find((l) => l.includes('"api listening"'));
      return line ? (JSON.parse(line).address as string) : undefined;
    },
    50_000,
    'tuneline api to listen',
  );
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await t?.drop();
});

describe('tuneline api', () => {
  it('serves the API from the environment and stops cleanly on SIGTERM', async () => {
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const created = await fetch(`${base}/v1/admin/licenses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'cli-lic', name: 'CLI' }),
    });
    expect(created.status).toBe(201);
    expect((await fetch(`${base}/v1/credits`)).status).toBe(401);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('refuses a bad port as a usage error', async () => {
    const bad = spawn(process.execPath, [BIN, 'api', '--port', 'abc'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr?.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => bad.once('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(err).toContain('--port must be 0-65535');
  });
});
