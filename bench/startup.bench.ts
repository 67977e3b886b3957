// Start-up: how long each process takes from spawn to its first 200 from /readyz, running its compiled
// bundle (dist/main.js, what the images, `tuneline workers`, the demo and the harness run) against the
// baselines measured in the same run: the same process from its TypeScript sources through tsx (what
// every process did before the build step), with tsx's transform cache warm (every start after the
// first on one machine) and without it (TSX_DISABLE_CACHE=1: a new container, whose /tmp is empty, or
// the first start after a change). For each of the six workers and the API, one at a time, then the six
// workers started at once (as `tuneline workers` does), then the CLI to its exit (`--help`). Twice: as
// the machine is, and with one CPU-burning child per core (a loaded machine). Each round rotates which
// mode goes first. STARTUP_BENCH_ROUNDS overrides the 3 rounds.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTargets, ensureBuilt, entryArgs, freePort } from '@tuneline/devstack';
import { deleteQueueKeys } from '@tuneline/harness';
import { Redis } from 'ioredis';
import { requireServers, scratchDatabase } from './support.ts';

const ROUNDS = Number(process.env.STARTUP_BENCH_ROUNDS ?? 3);
const READY_TIMEOUT_MS = 180_000;

const { baseUrl, redisUrl } = requireServers('startup.bench');

const root = join(import.meta.dirname, '..');
type Mode = 'tsx-cold' | 'tsx' | 'compiled';
const MODES: Mode[] = ['tsx-cold', 'tsx', 'compiled'];
/** How each mode starts an entry: the Node arguments and the environment it adds. */
const modeArgs = (entry: string, mode: Mode) => entryArgs(entry, { sources: mode !== 'compiled' });
const modeEnv = (mode: Mode): NodeJS.ProcessEnv => (mode === 'tsx-cold' ? { TSX_DISABLE_CACHE: '1' } : {});

interface Process {
  name: string;
  entry: string;
  /** The variable that sets its /readyz port. */
  portVariable: 'HEALTH_PORT' | 'API_PORT';
}

const targets = buildTargets(root);
const processes: Process[] = targets
  .filter((t) => t.name !== 'cli')
  .map((t) => ({
    name: t.name,
    entry: t.entry,
    portVariable: t.name === 'api' ? 'API_PORT' : 'HEALTH_PORT',
  }));
const workers = processes.filter((p) => p.portVariable === 'HEALTH_PORT');
const cli = targets.find((t) => t.name === 'cli')!;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exitOf = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

/** Resident set size of a live process, MB. */
function rssMb(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface Started {
  ms: number;
  rss: number;
}

/** Starts the processes at once; resolves when each has answered /readyz with 200, then stops them. */
async function startAll(list: Process[], mode: Mode, env: NodeJS.ProcessEnv): Promise<Started[]> {
  const ports = await Promise.all(list.map(() => freePort()));
  const started = performance.now();
  const children = list.map((p, i) => {
    const child = spawn(process.execPath, modeArgs(p.entry, mode), {
      cwd: root,
      env: { ...env, ...modeEnv(mode), [p.portVariable]: String(ports[i]) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    return { child, stderr: () => stderr };
  });
  try {
    return await Promise.all(
      children.map(async ({ child, stderr }, i) => {
        for (;;) {
          if (child.exitCode !== null) throw new Error(`${list[i]!.name} (${mode}) exited: ${stderr()}`);
          const ok = await fetch(`http://127.0.0.1:${ports[i]}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          );
          if (ok) return { ms: performance.now() - started, rss: rssMb(child.pid) };
          if (performance.now() - started > READY_TIMEOUT_MS)
            throw new Error(`${list[i]!.name} (${mode}) not ready after ${READY_TIMEOUT_MS} ms: ${stderr()}`);
          await sleep(20);
        }
      }),
    );
  } finally {
    for (const { child } of children) child.kill('SIGTERM');
    await Promise.all(children.map(({ child }) => exitOf(child)));
  }
}

/** The CLI from spawn to exit (`tuneline --help`): the bin in a checkout (tsx), or the bundle. */
async function cliHelp(mode: Mode): Promise<number> {
  const args =
    mode === 'compiled' ? [cli.outfile, '--help'] : [join(cli.packageDir, 'bin', 'tuneline.mjs'), '--help'];
  const started = performance.now();
  const env = { ...process.env, ...modeEnv(mode) };
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'ignore', env });
  await exitOf(child);
  if (child.exitCode !== 0) throw new Error(`tuneline --help (${mode}) exited ${child.exitCode}`);
  return performance.now() - started;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const spread = (xs: number[]) =>
  `${seconds(median(xs))} s (${seconds(Math.min(...xs))}-${seconds(Math.max(...xs))})`.padEnd(22);

interface Row {
  label: string;
  times: Record<Mode, number[]>;
  rss?: Record<Mode, number[]>;
}

function report(title: string, rows: Row[]): void {
  console.log(`\n${title}, median (min-max); ratio: compiled / tsx, median of the rounds' ratios`);
  console.log(
    `  ${'process'.padEnd(18)}${'tsx, no cache'.padEnd(24)}${'tsx, cache warm'.padEnd(24)}${'compiled'.padEnd(24)}` +
      'ratio: cold  warm   RSS MB tsx / compiled',
  );
  // Paired by round: each round's compiled time over that round's baseline.
  const ratio = (row: Row, baseline: Mode) =>
    median(row.times.compiled.map((c, i) => c / row.times[baseline][i]!)).toFixed(2);
  for (const row of rows) {
    const rss = row.rss ? `${median(row.rss.tsx).toFixed(0)} / ${median(row.rss.compiled).toFixed(0)}` : '';
    console.log(
      `  ${row.label.padEnd(18)}${MODES.map((m) => spread(row.times[m])).join('  ')}  ` +
        `${ratio(row, 'tsx-cold').padStart(11)}  ${ratio(row, 'tsx')}   ${rss}`,
    );
  }
}

async function measure(condition: string, env: NodeJS.ProcessEnv): Promise<void> {
  const load = loadavg()[0]!.toFixed(1);
  const empty = (): Record<Mode, number[]> => ({ 'tsx-cold': [], tsx: [], compiled: [] });
  const rows: Row[] = processes.map((p) => ({ label: p.name, times: empty(), rss: empty() }));
  const together: Row = { label: 'six workers', times: empty() };
  const help: Row = { label: 'cli --help (exit)', times: empty() };
  for (let round = 0; round < ROUNDS; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]!);
    for (const [i, p] of processes.entries()) {
      for (const mode of order) {
        const [s] = await startAll([p], mode, env);
        rows[i]!.times[mode].push(s!.ms);
        rows[i]!.rss![mode].push(s!.rss);
      }
    }
    for (const mode of order) {
      const all = await startAll(workers, mode, env);
      together.times[mode].push(Math.max(...all.map((s) => s.ms)));
    }
    for (const mode of order) help.times[mode].push(await cliHelp(mode));
  }
  report(
    `${condition}: spawn to the first 200 from /readyz, ${ROUNDS} rounds (load average ${load} at the start, ${availableParallelism()} cores)`,
    [...rows, together, help],
  );
}

/** One busy-looping Node process per core, for a machine under load. */
function burnCpus(): ChildProcess[] {
  return Array.from({ length: availableParallelism() }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
}

// The bundles must exist and be fresh; building them is not part of what is measured.
ensureBuilt(root, targets);
const scratch = await scratchDatabase(baseUrl, 'startup', 2);
const files = mkdtempSync(join(tmpdir(), 'tuneline-startup-'));
const prefix = `tlbench-startup-${randomBytes(4).toString('hex')}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DATABASE_URL: scratch.url,
  REDIS_URL: redisUrl,
  QUEUE_PREFIX: prefix,
  LOG_LEVEL: 'warn',
  STORAGE_DIR: join(files, 'storage'),
  MAIL_OUTBOX_DIR: join(files, 'mail'),
  // Nothing is called at start-up; the simulator profile only needs a URL.
  PROVIDER: 'simulator',
  SIMULATOR_URL: 'http://127.0.0.1:9/v1',
};
let burners: ChildProcess[] = [];
try {
  await measure('as the machine is', env);
  burners = burnCpus();
  await measure(`with ${burners.length} CPU-burning processes (one per core)`, env);
} finally {
  for (const b of burners) b.kill('SIGKILL');
  const redis = new Redis(redisUrl);
  await deleteQueueKeys(redis, prefix);
  redis.disconnect();
  await scratch.drop();
  rmSync(files, { recursive: true, force: true });
}
