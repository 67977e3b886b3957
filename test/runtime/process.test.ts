import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notifySendMessage } from '@tuneline/contracts';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect } from 'vitest';
import { redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type CapturedProcess, spawnCaptured } from '../support/process.ts';

const root = join(import.meta.dirname, '../..');

interface Started extends CapturedProcess {
  port: number;
}

/**
 * Starts a service as its own process and waits for its health port, and unless `healthOnly` also for
 * its "service started" line (the health port is logged before the worker connects); fails if it exits.
 */
async function startProcess(
  script: string,
  env: Record<string, string>,
  healthOnly = false,
): Promise<Started> {
  const proc = spawnCaptured(['--import', 'tsx', script], {
    cwd: root,
    env: { ...process.env, HEALTH_PORT: '0', LOG_LEVEL: 'info', ...env },
  });
  const port = await waitFor(
    async () => {
      const out = proc.output();
      if (proc.child.exitCode !== null) throw new Error(`process exited early:\n${out}`);
      const m = /"healthPort":(\d+)/.exec(out);
      return m && (healthOnly || out.includes('service started')) ? Number(m[1]) : undefined;
    },
    20_000,
    `${script} to start`,
  );
  return { ...proc, port };
}

describe('service processes', () => {
  let tdb: TestDatabase;
  test.beforeAll(async ({ database }) => {
    tdb = database;
  });

  it('SIGTERM while a job runs: readiness turns 503, what runs beside the stage closes first, the job finishes, the process exits 0 within the limit', async () => {
    const prefix = testPrefix();
    const marker = join(mkdtempSync(join(tmpdir(), 'tl-')), 'marker');
    const proc = await startProcess('test/fixtures/slow-service.ts', {
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      MARKER_FILE: marker,
      JOB_MS: '1500',
      SHUTDOWN_TIMEOUT_MS: '10000',
    });
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue('notify-send', { connection: redis, prefix });
    try {
      expect((await fetch(`http://127.0.0.1:${proc.port}/readyz`)).status).toBe(200);
      const id = randomUUID();
      const message = notifySendMessage({ notificationId: id, correlationId: 'c' });
      const job = await queue.add(message.queue, message.payload, { jobId: message.jobId });
      await waitFor(
        async () => existsSync(marker) && readFileSync(marker, 'utf8').includes(`start ${id}`),
        10_000,
        'job to start',
      );
      const sentAt = Date.now();
      proc.child.kill('SIGTERM');
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${proc.port}/readyz`).catch(() => null))?.status === 503,
        2_000,
        'readiness 503',
      );
      const exit = await proc.exit;
      expect(exit.code).toBe(0);
      expect(exit.at - sentAt).toBeLessThan(10_000);
      expect(readFileSync(marker, 'utf8').trim().split('\n')).toEqual([
        'beside started',
        `start ${id}`,
        'beside closed',
        `done ${id}`,
      ]);
      expect(await job.getState()).toBe('completed');
    } finally {
      proc.child.kill('SIGKILL');
      await queue.close();
      redis.disconnect();
    }
  });

  it('/readyz is 503 and names Redis when Redis is unreachable; /livez stays 200', async () => {
    const proc = await startProcess(
      'test/fixtures/slow-service.ts',
      {
        DATABASE_URL: tdb.url,
        REDIS_URL: 'redis://127.0.0.1:1',
        QUEUE_PREFIX: testPrefix(),
        MARKER_FILE: '/dev/null',
      },
      true,
    );
    try {
      expect((await fetch(`http://127.0.0.1:${proc.port}/livez`)).status).toBe(200);
      const ready = await fetch(`http://127.0.0.1:${proc.port}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { checks: Record<string, string> };
      expect(body.checks.redis).toMatch(/^unreachable/);
      expect(body.checks.postgres).toBe('ok');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('refuses to start with a readable message naming each bad variable', async () => {
    const proc = spawnCaptured(['--import', 'tsx', 'test/fixtures/slow-service.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: 'not a url', REDIS_URL: '', MARKER_FILE: '/dev/null' },
    });
    expect((await proc.exit).code).toBe(78);
    const err = proc.output();
    expect(err).toMatch(
      /Invalid configuration: DATABASE_URL: must be a postgres:\/\/ URL; REDIS_URL: must be a redis:\/\/ URL/,
    );
  });
});
