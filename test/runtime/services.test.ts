import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES } from '@tuneline/contracts';
import { readServiceManifests, type Supervisor, superviseServices } from '@tuneline/devstack';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

const root = join(import.meta.dirname, '../..');

describe('the six services', () => {
  const manifests = readServiceManifests(root);

  it.each([...SERVICES])(
    '%s keeps its settings in one module, src/config.ts, which its main.ts uses',
    async (service) => {
      const dir = join(root, 'services', service, 'src');
      const { configSchema } = (await import(join(dir, 'config.ts'))) as {
        configSchema: { safeParse(env: unknown): { success: boolean; data?: Record<string, unknown> } };
      };
      const parsed = configSchema.safeParse({
        DATABASE_URL: 'postgres://u@h/db',
        REDIS_URL: 'redis://h:6379',
      });
      expect(parsed.success).toBe(true);
      expect(parsed.data).toMatchObject({ QUEUE_PREFIX: 'tuneline', WORKER_CONCURRENCY: 4 });
      expect(configSchema.safeParse({ REDIS_URL: 'redis://h:6379' }).success).toBe(false);
      const main = readFileSync(join(dir, 'main.ts'), 'utf8');
      expect(main).toMatch(/import \{[^}]*\bconfigSchema\b[^}]*\} from '\.\/config\.ts'/);
      expect(main, 'no settings defined in main.ts').not.toMatch(/baseConfigSchema|\bz\.|\.extend\(/);
    },
  );

  describe('as processes', () => {
    let tdb: TestDatabase;
    let supervisor: Supervisor;
    const output: Record<string, string> = {};
    test.beforeAll(async ({ database, prefix }) => {
      tdb = database;
      supervisor = superviseServices({
        root,
        manifests,
        env: {
          ...process.env,
          DATABASE_URL: tdb.url,
          REDIS_URL: redisUrl(),
          QUEUE_PREFIX: prefix,
          LOG_LEVEL: 'info',
        },
        restart: false,
        onOutput: (service, chunk) => {
          output[service] = (output[service] ?? '') + chunk;
        },
      });
    });
    afterAll(async () => {
      await supervisor.stop(5_000);
    });

    it('start, connect, report ready, and exit 0 on SIGTERM', async () => {
      const ports = await Promise.all(
        supervisor.processes.map((p) =>
          waitFor(
            async () => {
              if (p.child.exitCode !== null) throw new Error(`${p.service} exited: ${output[p.service]}`);
              const log = output[p.service] ?? '';
              const m = /"healthPort":(\d+)/.exec(log);
              return m && log.includes('service started') ? Number(m[1]) : undefined;
            },
            90_000,
            `${p.service} to start`,
          ),
        ),
      );
      for (const port of ports) {
        expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
        expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(metrics).toContain('tuneline_jobs_total');
      }
      const exits = supervisor.processes.map(
        (p) => new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code))),
      );
      for (const p of supervisor.processes) p.child.kill('SIGTERM');
      expect(await Promise.all(exits)).toEqual(supervisor.processes.map(() => 0));
    }, 120_000);
  });
});
