// `npm run bench`: runs every bench/*.bench.ts as its own process (so peak RSS figures are its own)
// against the devstack's Postgres and Redis. `npm run bench -- dataset` runs the files whose name matches.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStack, StackError } from '@tuneline/devstack';

const root = join(import.meta.dirname, '..');
const filter = process.argv[2];
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts') && (!filter || f.includes(filter)))
  .sort();

let stack: Awaited<ReturnType<typeof ensureStack>> | undefined;
let failed = 0;
try {
  stack = await ensureStack({ root });
  for (const file of files) {
    process.stdout.write(`\n=== ${file} ===\n`);
    const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join('bench', file)], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: stack.databaseUrl, REDIS_URL: stack.redisUrl, LOG_LEVEL: 'warn' },
    });
    if (result.status !== 0) {
      failed++;
      process.stdout.write(`${file}: FAILED (exit ${result.status ?? result.signal})\n`);
    }
  }
} catch (err) {
  if (!(err instanceof StackError)) throw err;
  process.stderr.write(`tuneline: ${err.message}\n`);
  failed++;
} finally {
  await stack?.stop();
}
process.stdout.write(`\n${files.length - failed} benchmarks ran, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
