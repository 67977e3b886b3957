// `npm run chaos`: 200 fine-tune requests, spread over the openai, azure and together profiles (every
// other one evaluated), through the seven workers as separate processes against the simulator with 10%
// 429s, 5% 500s, lost create answers and duplicated webhooks, while a random worker is SIGKILLed every
// 4 s (and restarted), Redis loses the deployment's keys once and Postgres backends are terminated once.
// Prints and checks the exactly-once counts, overall and per provider; exits 1 when any check fails.
// Options: --requests N, --kill-every-ms N, --scale N (instances per worker), --seed N,
// --providers openai,azure,together (a subset), --keep-database.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureStack, StackError } from '@tuneline/devstack';
import {
  failedChecks,
  formatReport,
  runTrial,
  SERVICES,
  TRIAL_PROVIDERS,
  type TrialProvider,
} from '@tuneline/harness';

const root = join(import.meta.dirname, '..');
const positiveInt = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`tuneline chaos: --${name} must be a positive integer (got "${value}")\n`);
    process.exit(2);
  }
  return n;
};

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      requests: { type: 'string' },
      'kill-every-ms': { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      providers: { type: 'string' },
      'keep-database': { type: 'boolean' },
    },
  });
}
try {
  args = parse();
} catch (err) {
  process.stderr.write(`tuneline chaos: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
const requests = positiveInt('requests', args.values.requests, 200);
const killEveryMs = positiveInt('kill-every-ms', args.values['kill-every-ms'], 4_000);
const scale = positiveInt('scale', args.values.scale, 1);
const seed = positiveInt('seed', args.values.seed, 2026);
const providers = (args.values.providers ?? TRIAL_PROVIDERS.join(',')).split(',').map((p) => p.trim());
const unknown = providers.filter((p) => !(TRIAL_PROVIDERS as readonly string[]).includes(p));
if (unknown.length || providers.length === 0) {
  process.stderr.write(
    `tuneline chaos: --providers must list some of ${TRIAL_PROVIDERS.join(', ')} (got "${args.values.providers}")\n`,
  );
  process.exit(2);
}

let stack: Awaited<ReturnType<typeof ensureStack>> | undefined;
let code = 0;
try {
  stack = await ensureStack({ root });
  for (const note of stack.notes) process.stdout.write(`${note}\n`);
  process.stdout.write(
    `chaos: ${requests} requests over ${providers.join(', ')} · 429 10% · 500 5% · lost creates 10% · duplicate webhooks 30% · SIGKILL a random worker every ${killEveryMs} ms · one Redis flush · one Postgres backend purge\n`,
  );
  const report = await runTrial({
    root,
    serverDatabaseUrl: stack.databaseUrl,
    redisUrl: stack.redisUrl,
    requests,
    licenses: 10,
    providers: providers as TrialProvider[],
    seed,
    scale: Object.fromEntries(SERVICES.map((s) => [s, scale])),
    faults: {
      rate429: 0.1,
      rate500: 0.05,
      lostCreateRate: 0.1,
      duplicateWebhookRate: 0.3,
      retryAfterSeconds: 0.5,
    },
    chaos: {
      killEveryMs,
      killMode: 'random',
      flushRedisAfterMs: 10_000,
      terminateBackendsAfterMs: 20_000,
    },
    timeoutMs: 20 * 60_000,
    keepDatabase: args.values['keep-database'] ?? false,
    progress: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${formatReport(report).join('\n')}\n`);
  const failed = failedChecks(report);
  if (failed.length) {
    code = 1;
    process.stdout.write(`\nFAILED:\n${failed.map((f) => `  ✗ ${f}`).join('\n')}\n`);
  } else {
    process.stdout.write('\nall checks passed\n');
  }
} catch (err) {
  if (!(err instanceof StackError)) throw err;
  process.stderr.write(`tuneline chaos: ${err.message}\n`);
  code = 1;
} finally {
  await stack?.stop();
}
process.exit(code);
