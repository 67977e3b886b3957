// `npm test`: typecheck, lint, then the whole vitest suite against real Postgres and Redis
// (found or started by the devstack). Extra arguments go to vitest (`npm test -- test/contracts`).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureStack, StackError } from '@tuneline/devstack';

const root = join(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const args = process.argv.slice(2);

function step(title: string, cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): void {
  process.stderr.write(`\n▶ ${title}\n`);
  const started = Date.now();
  const result = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    process.stderr.write(`✗ ${title} failed (exit ${result.status ?? result.signal})\n`);
    throw new StepFailed(result.status ?? 1);
  }
  process.stderr.write(`✓ ${title} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

class StepFailed extends Error {
  constructor(readonly code: number) {
    super(`step failed with ${code}`);
  }
}

let stack: Awaited<ReturnType<typeof ensureStack>> | undefined;
let code = 0;
try {
  if (args.length === 0) {
    step('typecheck (tsc)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
    step('lint (biome)', bin('biome'), ['check', '.']);
  }
  stack = await ensureStack({ root });
  for (const note of stack.notes) process.stderr.write(`  ${note}\n`);
  step('tests (vitest)', bin('vitest'), ['run', ...args], {
    ...process.env,
    TEST_DATABASE_URL: process.env.TEST_DATABASE_URL ?? stack.databaseUrl,
    TEST_REDIS_URL: process.env.TEST_REDIS_URL ?? stack.redisUrl,
  });
} catch (err) {
  if (err instanceof StepFailed) code = err.code;
  else if (err instanceof StackError) {
    process.stderr.write(`\ntuneline: ${err.message}\n`);
    code = 1;
  } else throw err;
} finally {
  await stack?.stop();
}
process.exit(code);
