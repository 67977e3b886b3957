// The inference gateway under load (issue 19, "Benchmark"). In one run, at concurrencies 1, 8 and 32,
// the same ~1,500-token extraction prompt against the simulator, three ways:
//   direct   straight to the simulator
//   proxy    through a bare pass-through proxy (Node http, keep-alive, no auth, no metering)
//   gateway  through Tuneline's POST /v1/chat/completions (auth, model lookup, rate limit, hold, forward,
//            settle), rate limits on (set high), metering in Postgres
// Each of simulator, proxy and API runs in its own process (bench/gateway-process.ts), so CPU per call
// is read per process from /proc; Postgres CPU is the database backends' (same machine only).
// Targets: gateway throughput >= 0.6x proxy at c=32; gateway p50 - proxy p50 <= 3 ms at c=8.
//
// A/B in one run: GATEWAY_BENCH_VARIANTS='before=GATEWAY_CACHE_TTL_MS:0,GATEWAY_HOLD_COMMIT:durable;...'
// starts one more API per variant (its environment with those overrides, same database and license)
// and measures it right after the shipped gateway at each concurrency. GATEWAY_BENCH_REPS=N repeats
// every measurement N times, interleaved (all targets at c=1, c=8, c=32, then again), and the summary
// takes each figure's median, and each ratio's median over the repetitions' own ratios (a pair measured
// seconds apart shares the machine's load). GATEWAY_BENCH_CONCURRENCIES=8,32 picks the concurrencies,
// GATEWAY_BENCH_CALLS_SCALE=0.5 halves the calls per measurement (more, shorter repetitions).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { defaultCatalogue, TokenCounter } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { sql } from 'kysely';
import OpenAI, { toFile } from 'openai';
import { makeDataset, makeFineTune, makeLicense } from '../test/api/fixtures.ts';
import { invoices } from './dataset-invoices.ts';
import { pidCpuMs, requireServers, scratchDatabase } from './support.ts';

const { baseUrl, redisUrl } = requireServers('gateway bench');
const CONCURRENCIES = (process.env.GATEWAY_BENCH_CONCURRENCIES ?? '1,8,32').split(',').map(Number);
const REPS = Math.max(1, Number(process.env.GATEWAY_BENCH_REPS ?? 1));

/** `name=VAR:value,VAR:value;name2=...` → API environments to compare with the shipped one. */
function variants(spec: string | undefined): Array<{ name: string; env: Record<string, string> }> {
  if (!spec) return [];
  return spec
    .split(';')
    .filter(Boolean)
    .map((part) => {
      const [name, vars = ''] = part.split('=', 2);
      const env = Object.fromEntries(
        vars
          .split(',')
          .filter(Boolean)
          .map((kv) => kv.split(':', 2) as [string, string]),
      );
      return { name: `gw:${name}`, env };
    });
}
const SCALE = Number(process.env.GATEWAY_BENCH_CALLS_SCALE ?? 1);
const CALLS: Record<number, number> = { 1: 200 * SCALE, 8: 800 * SCALE, 32: 1_600 * SCALE };
// Calls before each measurement, not measured: enough for V8 to optimise the hot path (with 40, the
// first concurrency measured, c=1, ran partly unoptimised: 3.1-3.7 ms of API CPU per call against
// ~1-2 ms warm). GATEWAY_BENCH_WARMUP overrides it.
const WARMUP = Number(process.env.GATEWAY_BENCH_WARMUP ?? 400);

/**
 * CPU ms so far of each of the scratch database's backends (null when Postgres is not on this
 * machine). Backends come and go (the pool closes idle ones), so a run sums per-backend differences.
 */
async function postgresCpuByBackend(db: Db): Promise<Map<number, number> | null> {
  const { rows } = await sql<{ pid: number }>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(db);
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      out.set(pid, pidCpuMs(pid));
    } catch {
      // Gone since the query (or not on this machine: then none is readable).
    }
  }
  return rows.length > 0 && out.size === 0 ? null : out;
}

/** CPU the backends used between two readings: those present at the end, from their start or 0. */
function postgresCpuBetween(before: Map<number, number> | null, after: Map<number, number> | null) {
  if (!before || !after) return null;
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

// GATEWAY_BENCH_CPU_PROF=<dir>: each process writes a V8 CPU profile there when it stops (--cpu-prof,
// which NODE_OPTIONS does not accept), to see where a call's CPU goes.
const CPU_PROF = process.env.GATEWAY_BENCH_CPU_PROF;
// GATEWAY_BENCH_API_CPUS=<list>: the API runs on those CPUs only (`taskset -c`), a diagnostic of how much
// of its latency is sharing cores with the load generator and the simulator: run the bench itself under
// `taskset -c <the others>` and pin Postgres with `taskset -a -p` (docs/GATEWAY.md, Benchmark).
const API_CPUS = process.env.GATEWAY_BENCH_API_CPUS;

function startProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(CPU_PROF, args[0] ?? '')}`] : [];
  const node = [process.execPath, ...prof, '--import', 'tsx', join('bench', 'gateway-process.ts'), ...args];
  const pinned = API_CPUS && args[0] === 'api' ? ['taskset', '-c', API_CPUS, ...node] : node;
  const child = spawn(pinned[0] as string, pinned.slice(1), {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}

interface Target {
  /** direct, proxy, gateway (as shipped), gw:<variant>. */
  name: string;
  url: string;
  key: string;
  pid?: number;
}

interface Run {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
  cpuMsPerCall: number | null;
  pgMsPerCall: number | null;
}

function post(agent: Agent, url: URL, key: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: `${url.pathname}/chat/completions`,
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function measure(
  target: Target,
  concurrency: number,
  calls: number,
  body: string,
  db: Db,
): Promise<Run> {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const once = async (n: number, latencies?: number[]) => {
    let next = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const t0 = performance.now();
          const status = await post(agent, url, target.key, body);
          if (status !== 200) errors++;
          latencies?.push(performance.now() - t0);
        }
      }),
    );
    return errors;
  };
  await once(WARMUP);
  const latencies: number[] = [];
  const cpu0 = target.pid ? pidCpuMs(target.pid) : 0;
  const viaApi = target.name === 'gateway' || target.name.startsWith('gw:');
  const pg0 = viaApi ? await postgresCpuByBackend(db) : null;
  const t0 = performance.now();
  const errors = await once(calls, latencies);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = target.pid ? pidCpuMs(target.pid) : 0;
  const pg1 = viaApi ? await postgresCpuByBackend(db) : null;
  agent.destroy();
  const pgCpu = viaApi ? postgresCpuBetween(pg0, pg1) : null;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    perSecond: calls / seconds,
    p50: q(0.5),
    p99: q(0.99),
    errors,
    cpuMsPerCall: target.pid ? (cpu1 - cpu0) / calls : null,
    pgMsPerCall: pgCpu === null ? null : pgCpu / calls,
  };
}

function line(c: number, name: string, run: Run): string {
  const cpu =
    run.cpuMsPerCall === null
      ? ''
      : `  ${name === 'direct' ? 'simulator' : name === 'proxy' ? 'proxy' : 'api'} cpu ${run.cpuMsPerCall.toFixed(2)} ms/call`;
  const pg = run.pgMsPerCall === null ? '' : `  postgres cpu ${run.pgMsPerCall.toFixed(2)} ms/call`;
  return `c=${String(c).padStart(2)} ${name.padEnd(10)} ${run.perSecond.toFixed(0).padStart(6)} calls/s  p50 ${run.p50.toFixed(2).padStart(7)} ms  p99 ${run.p99.toFixed(2).padStart(7)} ms  errors ${run.errors}${cpu}${pg}`;
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const scratch = await scratchDatabase(baseUrl, 'gateway', 4);
  try {
    const sim = await startProcess(['sim'], { ...process.env });
    children.push(sim.child);
    const simClient = new OpenAI({ baseURL: sim.url, apiKey: 'sk-sim', maxRetries: 0 });
    const docs = [...invoices(40)];
    const system =
      'You extract fields from OCR text of invoices. Answer with one JSON object with the keys invoiceNumber, date, vendor, total, currency and iban; use null for a field the document does not show. Copy values as written.';
    const lines = docs.map((d) =>
      JSON.stringify({
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: d.text },
          { role: 'assistant', content: JSON.stringify(d.fields) },
        ],
      }),
    );
    const file = await simClient.files.create({
      file: await toFile(Buffer.from(lines.join('\n')), 'bench.jsonl'),
      purpose: 'fine-tune',
    });
    const job = await simClient.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: file.id,
      hyperparameters: { n_epochs: 1 },
    });
    let done = await simClient.fineTuning.jobs.retrieve(job.id);
    while (!['succeeded', 'failed', 'cancelled'].includes(done.status)) {
      await new Promise((r) => setTimeout(r, 20));
      done = await simClient.fineTuning.jobs.retrieve(job.id);
    }
    if (done.status !== 'succeeded') throw new Error(`bench fine-tune ${done.status}`);
    const model = done.fine_tuned_model as string;

    // The prompt: the system prompt and one invoice's OCR text, lengthened to about 1,500 tokens.
    const counter = new TokenCounter(defaultCatalogue['gpt-4o-mini-2024-07-18']?.encoding ?? 'o200k_base');
    const doc = docs[39] as (typeof docs)[number];
    let text = doc.text;
    for (const extra of docs.slice(0, 10)) {
      if (counter.count(system) + counter.count(text) >= 1_480) break;
      text += `\n${extra.text.split('\n').slice(4, 30).join('\n')}`;
    }
    const promptTokens = counter.count(system) + counter.count(text) + 11;
    const body = JSON.stringify({
      model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: text },
      ],
      max_tokens: 300,
      temperature: 0,
    });

    const lic = await makeLicense(scratch.db, 'lic-bench', 1_000_000_000n);
    await makeFineTune(scratch.db, lic.id, await makeDataset(scratch.db, lic.id, 'uploaded'), {
      model,
      active: true,
    });
    const startApiProcess = async (overrides: Record<string, string>) => {
      const api = await startProcess(['api'], {
        ...process.env,
        // GATEWAY_BENCH_ASYNC_COMMIT=1: the API's sessions commit without waiting for the WAL flush, a
        // diagnostic of how much of the gateway's latency is the commits' fsync (not a setting we ship).
        // (also per variant: GATEWAY_BENCH_ASYNC_COMMIT:1 in its overrides)
        DATABASE_URL:
          (overrides.GATEWAY_BENCH_ASYNC_COMMIT ?? process.env.GATEWAY_BENCH_ASYNC_COMMIT) === '1'
            ? `${scratch.url}${scratch.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c synchronous_commit=off')}`
            : scratch.url,
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: `tlbench-${randomBytes(3).toString('hex')}`,
        PROVIDER: 'simulator',
        SIMULATOR_URL: sim.url,
        SIMULATOR_API_KEY: 'sk-sim',
        LOG_LEVEL: 'warn',
        API_HOST: '127.0.0.1',
        GATEWAY_REQUESTS_PER_MINUTE: '100000000',
        GATEWAY_TOKENS_PER_MINUTE: '1000000000000',
        ...overrides,
      });
      children.push(api.child);
      return api;
    };
    const gateways: Target[] = [];
    for (const { name, env } of [
      { name: 'gateway', env: {} },
      ...variants(process.env.GATEWAY_BENCH_VARIANTS),
    ]) {
      const api = await startApiProcess(env);
      gateways.push({
        name,
        url: `${api.url}/v1`,
        key: lic.key,
        ...(api.child.pid ? { pid: api.child.pid } : {}),
      });
    }
    const proxy = await startProcess(['proxy', sim.url], { ...process.env });
    children.push(proxy.child);

    const targets: Target[] = [
      { name: 'direct', url: sim.url, key: 'sk-sim', ...(sim.child.pid ? { pid: sim.child.pid } : {}) },
      { name: 'proxy', url: proxy.url, key: 'sk-sim', ...(proxy.child.pid ? { pid: proxy.child.pid } : {}) },
      ...gateways,
    ];
    const load0 = loadavg();
    console.log(
      `gateway bench: prompt ${promptTokens} tokens (o200k), max_tokens 300, ${cpus().length} CPUs, load ${load0.map((l) => l.toFixed(1)).join(' ')}${process.env.GATEWAY_BENCH_ASYNC_COMMIT === '1' ? ', API sessions with synchronous_commit=off (diagnostic)' : ''}`,
    );
    const runs: Record<number, Record<string, Run[]>> = {};
    for (let rep = 1; rep <= REPS; rep++) {
      for (const c of CONCURRENCIES) {
        const atC = runs[c] ?? {};
        runs[c] = atC;
        for (const target of targets) {
          const run = await measure(target, c, CALLS[c] ?? 400, body, scratch.db);
          atC[target.name] = [...(atC[target.name] ?? []), run];
          console.log(`${REPS > 1 ? `rep ${rep} ` : ''}${line(c, target.name, run)}`);
        }
      }
    }
    // Each figure's median over the repetitions, and each ratio's median over the repetitions' ratios.
    const median = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return sorted.length ? (sorted[Math.floor((sorted.length - 1) / 2)] as number) : Number.NaN;
    };
    const results: Record<number, Record<string, Run>> = {};
    for (const c of CONCURRENCIES) {
      results[c] = {};
      for (const [name, list] of Object.entries(runs[c] ?? {})) {
        const med = (f: (r: Run) => number | null) => {
          const xs = list.map(f).filter((x): x is number => x !== null);
          return xs.length ? median(xs) : null;
        };
        (results[c] as Record<string, Run>)[name] = {
          perSecond: med((r) => r.perSecond) ?? 0,
          p50: med((r) => r.p50) ?? 0,
          p99: med((r) => r.p99) ?? 0,
          errors: list.reduce((sum, r) => sum + r.errors, 0),
          cpuMsPerCall: med((r) => r.cpuMsPerCall),
          pgMsPerCall: med((r) => r.pgMsPerCall),
        };
      }
    }
    if (REPS > 1) {
      console.log(`medians of ${REPS} repetitions:`);
      for (const c of CONCURRENCIES)
        for (const t of targets) console.log(line(c, t.name, results[c]?.[t.name] as Run));
    }
    /** Median over the repetitions of f(this repetition's run of a, of b). */
    const paired = (c: number, a: string, b: string, f: (x: Run, y: Run) => number) =>
      median((runs[c]?.[a] ?? []).map((x, i) => f(x, runs[c]?.[b]?.[i] as Run)));
    const ratio = (x: Run, y: Run) => x.perSecond / y.perSecond;
    const added = (x: Run, y: Run) => x.p50 - y.p50;
    for (const c of CONCURRENCIES) {
      for (const g of gateways) {
        const vsShipped =
          g.name === 'gateway'
            ? ''
            : `, ${g.name}/gateway throughput ${paired(c, g.name, 'gateway', ratio).toFixed(2)}x`;
        console.log(
          `c=${String(c).padStart(2)} ${g.name}/proxy throughput ${paired(c, g.name, 'proxy', ratio).toFixed(2)}x, ${g.name} p50 - proxy p50 ${paired(c, g.name, 'proxy', added).toFixed(2)} ms${vsShipped}`,
        );
      }
      console.log(
        `c=${String(c).padStart(2)} proxy/direct throughput ${paired(c, 'proxy', 'direct', ratio).toFixed(2)}x`,
      );
    }
    if (runs[32]?.gateway) {
      const at32 = paired(32, 'gateway', 'proxy', ratio);
      console.log(
        `target c=32 gateway >= 0.6x proxy: ${at32.toFixed(2)}x ${at32 >= 0.6 ? 'ok' : 'TARGET MISSED'}`,
      );
    }
    if (runs[8]?.gateway) {
      const at8 = paired(8, 'gateway', 'proxy', added);
      console.log(`target c=8 added p50 <= 3 ms: ${at8.toFixed(2)} ms ${at8 <= 3 ? 'ok' : 'TARGET MISSED'}`);
    }
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await scratch.drop();
  }
}

await main();
