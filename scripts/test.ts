// `npm test`: typecheck, lint, then the whole vitest suite against real Postgres and Redis (found or
// started by the devstack) and, when the selected tests include the hub's browser test, Chromium (found,
// or installed from Debian's packages when permitted). Extra arguments go to vitest
// (`npm test -- test/contracts`): then typecheck and lint are skipped.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureChromium, ensureStack, StackError } from '@tuneline/devstack';
import { BROWSER_TESTS } from './browser-tests.ts';

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

/**
 * Whether vitest, given these arguments, runs a browser test. Asks vitest itself (`vitest list
 * --filesOnly`, about a second), so its own filter rules apply. When vitest rejects the arguments, the
 * run will say why; nothing is installed for it.
 */
function selectsBrowserTest(vitestArgs: string[]): boolean {
  if (vitestArgs.length === 0) return true;
  const listed = spawnSync(bin('vitest'), ['list', '--filesOnly', ...vitestArgs], {
    cwd: root,
    encoding: 'utf8',
  });
  if (listed.status !== 0) return false;
  const files = new Set(listed.stdout.split('\n').map((line) => line.trim()));
  return BROWSER_TESTS.some((file) => files.has(file));
}

let stack: Awaited<ReturnType<typeof ensureStack>> | undefined;
let code = 0;
try {
  // First what may stop the run, so a missing browser is said before minutes of typecheck and lint.
  const chromium = selectsBrowserTest(args) ? ensureChromium() : undefined;
  if (args.length === 0) {
    step('typecheck (tsc)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
    step('lint (biome)', bin('biome'), ['check', '.']);
  }
  stack = await ensureStack({ root });
  for (const note of stack.notes) process.stderr.write(`  ${note}\n`);
  if (chromium) process.stderr.write(`  chromium: ${chromium.note}\n`);
  step('tests (vitest)', bin('vitest'), ['run', ...args], {
    ...process.env,
    TEST_DATABASE_URL: process.env.TEST_DATABASE_URL ?? stack.databaseUrl,
    TEST_REDIS_URL: process.env.TEST_REDIS_URL ?? stack.redisUrl,
    ...(chromium ? { CHROMIUM_PATH: chromium.path } : {}),
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
