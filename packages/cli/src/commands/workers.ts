import { join } from 'node:path';
import { readServiceManifests, ServiceCatalogueError, superviseServices } from '@tuneline/devstack';
import { ConfigError } from '@tuneline/runtime';
import { type Command, parseOptions, UsageError } from '../command.ts';
import { devStackUsage, withDevStack } from '../stack.ts';

const root = join(import.meta.dirname, '../../../..');

export const workersCommand: Command = {
  name: 'workers',
  summary: 'Run the six stage workers as separate processes (restarted if they die)',
  usage: [
    'tuneline workers [--only a,b] [--scale service=N ...] [--base-port P]',
    '',
    'Starts one process per service the queue catalogue names (dataset-builder, uploader, trainer,',
    'poller, billing, notifier), each consuming its queues. Refuses to start (exit 78) when a consumer',
    'has no services/<name>/src/main.ts or a service folder consumes no queue.',
    'Each runs its compiled bundle, services/<name>/dist/main.js; those missing or older than their',
    'sources are built first (npm run build), with a note on stderr.',
    "Health ports: P, P+1, ... (default 9400). Uses DATABASE_URL, REDIS_URL and each service's own settings.",
    devStackUsage('DATABASE_URL or REDIS_URL'),
  ].join('\n'),
  async run(argv) {
    const { values } = parseOptions(argv, {
      only: { type: 'string' },
      scale: { type: 'string', multiple: true },
      'base-port': { type: 'string', default: '9400' },
    });
    // The catalogue check covers every service, even when --only starts a subset.
    const manifests = serviceManifests();
    const only = values.only?.split(',').map((s) => s.trim());
    for (const name of only ?? []) {
      if (!manifests.some((m) => m.service === name))
        throw new UsageError(`--only: unknown service "${name}"`);
    }
    const scale: Record<string, number> = {};
    for (const entry of values.scale ?? []) {
      const m = /^([a-z-]+)=(\d+)$/.exec(entry);
      if (!m || !manifests.some((s) => s.service === m[1]))
        throw new UsageError(`--scale: expected service=N, got "${entry}"`);
      scale[m[1]!] = Number(m[2]);
    }
    const basePort = Number(values['base-port']);
    if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65000)
      throw new UsageError('--base-port: expected a port number');
    const supervisor = superviseServices({
      root,
      manifests: manifests.filter((m) => !only || only.includes(m.service)),
      // Like the other database commands: without DATABASE_URL/REDIS_URL, the dev stack's running servers.
      env: await withDevStack(process.env, { redis: true, schema: true }),
      scale,
      basePort,
    });
    for (const p of supervisor.processes) {
      process.stderr.write(
        `tuneline workers: ${p.service}#${p.instance} pid ${p.child.pid}, health on :${p.healthPort}\n`,
      );
    }
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
    });
    process.stderr.write('tuneline workers: stopping\n');
    await supervisor.stop();
    return 0;
  },
};

function serviceManifests() {
  try {
    return readServiceManifests(root);
  } catch (err) {
    if (err instanceof ServiceCatalogueError) throw new ConfigError(err.message);
    throw err;
  }
}
