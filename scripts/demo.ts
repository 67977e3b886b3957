// `npm run demo`: brings the stack up from nothing (Postgres, Redis, migrations, the six workers as
// separate processes) and reports what is running. `npm run demo -- --exit` stops after the report.
import { join } from 'node:path';
import { createDb, migrateToLatest } from '@tuneline/db';
import { ensureStack, readServiceManifests, StackError, superviseServices } from '@tuneline/devstack';

const root = join(import.meta.dirname, '..');
const exitAfterReport = process.argv.includes('--exit');
const say = (line = '') => process.stdout.write(`${line}\n`);

let stack: Awaited<ReturnType<typeof ensureStack>>;
try {
  stack = await ensureStack({ root });
} catch (err) {
  if (err instanceof StackError) {
    process.stderr.write(`tuneline demo: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const db = createDb(stack.databaseUrl, { max: 2, applicationName: 'tuneline-demo' });
const migrated = await migrateToLatest(db);
await db.destroy();

const env = {
  ...process.env,
  DATABASE_URL: stack.databaseUrl,
  REDIS_URL: stack.redisUrl,
  QUEUE_PREFIX: process.env.QUEUE_PREFIX ?? 'tuneline-demo',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
};
const basePort = 9400;
const supervisor = superviseServices({
  root,
  manifests: readServiceManifests(root),
  env,
  basePort,
  onOutput: (service, chunk) => {
    for (const line of chunk.split('\n').filter(Boolean)) process.stderr.write(`[${service}] ${line}\n`);
  },
});

async function readiness(port: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.status === 200) return 'ready';
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return 'NOT READY';
}

say('Tuneline demo');
for (const note of stack.notes) say(`  ${note}`);
const applied = (migrated.results ?? []).filter((r) => r.status === 'Success').length;
say(`  migrations: ${applied ? `${applied} applied` : 'up to date'}`);
say('  workers:');
const states = await Promise.all(supervisor.processes.map((p) => readiness(p.healthPort)));
supervisor.processes.forEach((p, i) => {
  say(
    `    ${p.service.padEnd(16)} pid ${String(p.child.pid).padEnd(8)} http://127.0.0.1:${p.healthPort}/readyz  ${states[i]}`,
  );
});
const allReady = states.every((s) => s === 'ready');

const shutdown = async (code: number) => {
  await supervisor.stop();
  await stack.stop();
  process.exit(code);
};
if (exitAfterReport) {
  await shutdown(allReady ? 0 : 1);
} else {
  say('\nRunning. Press Ctrl-C to stop.');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown(0));
}
