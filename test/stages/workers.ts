import { join } from 'node:path';
import { readServiceManifests, type Supervisor, superviseServices } from '@tuneline/devstack';
import type { RunningSimulator } from '@tuneline/simulator';
import { redisUrl } from '../support/context.ts';

const root = join(import.meta.dirname, '..', '..');

/** The services as separate processes (their compiled bundles, as in production). */
export interface WorkerProcesses {
  supervisor: Supervisor;
  /** Runs `check`; when it fails, prints the processes' last output before the error goes on. */
  explained<T>(check: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts `services` (default: all) as processes on the test's database and queue prefix, against the
 * simulator, configured by the environment alone: the common settings, then `env`. Not restarted.
 */
export function superviseWorkers(opts: {
  databaseUrl: string;
  prefix: string;
  sim: RunningSimulator;
  services?: string[];
  env?: NodeJS.ProcessEnv;
}): WorkerProcesses {
  const output: string[] = [];
  const manifests = readServiceManifests(root);
  const supervisor = superviseServices({
    root,
    manifests: opts.services ? manifests.filter((m) => opts.services?.includes(m.service)) : manifests,
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: opts.prefix,
      LOG_LEVEL: 'warn',
      PROVIDER: 'simulator',
      SIMULATOR_URL: opts.sim.url,
      SIMULATOR_API_KEY: opts.sim.apiKey,
      OUTBOX_INTERVAL_MS: '100',
      ...opts.env,
    },
    basePort: 0,
    restart: false,
    onOutput: (service, chunk) => output.push(`[${service}] ${chunk}`),
  });
  return {
    supervisor,
    explained: async (check) => {
      try {
        return await check();
      } catch (err) {
        console.error(output.join('').slice(-4_000));
        throw err;
      }
    },
    stop: () => supervisor.stop(10_000),
  };
}
