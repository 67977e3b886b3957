import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type CapturedProcess, spawnCaptured } from '../support/process.ts';

/** `tuneline api` as its own process, configured from the environment. */

const ADMIN = 'cli-admin-key-0123456789abcdef';
const BIN = join(import.meta.dirname, '../../packages/cli/bin/tuneline.mjs');

let t: TestDatabase;
let api: CapturedProcess;
let base: string;

test.beforeAll(async ({ database, prefix }) => {
  t = database;
  api = spawnCaptured([BIN, 'api', '--port', '0'], {
    env: {
      ...process.env,
      DATABASE_URL: t.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      ADMIN_API_KEY: ADMIN,
      API_HOST: '127.0.0.1',
      PROVIDER: 'simulator',
      LOG_LEVEL: 'info',
    },
  });
  base = await waitFor(
    async () => {
      const line = api
        .output()
        .split('\n')
        .find((l) => l.includes('"api listening"'));
      return line ? (JSON.parse(line).address as string) : undefined;
    },
    50_000,
    'tuneline api to listen',
  );
}, 60_000);

afterAll(async () => {
  if (api && api.child.exitCode === null) api.child.kill('SIGKILL');
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
    api.child.kill('SIGTERM');
    expect((await api.exit).code).toBe(0);
  });

  it('refuses a bad port as a usage error', async () => {
    const bad = spawnCaptured([BIN, 'api', '--port', 'abc'], { env: process.env });
    expect((await bad.exit).code).toBe(2);
    expect(bad.output()).toContain('--port must be 0-65535');
  });
});
