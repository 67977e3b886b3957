// The inference gateway under load (issue 19, "Benchmark"). In one run, at concurrencies 1, 8 and 32,
// the same ~1,500-token extraction prompt against the simulator, three ways:
//   direct   straight to the simulator
//   proxy    through a bare pass-through proxy (Node http, keep-alive, no auth, no metering)
//   gateway  through Tuneline's POST /v1/chat/completions (auth, model lookup, rate limit, hold, forward,
//            settle), rate limits on (set high), metering in Postgres
// Each of simulator, proxy and API runs in its own process (bench/gateway-process.ts), so CPU per call
// is read per process from /proc; Postgres CPU is the database backends' (same machine only).
// Targets: gateway throughput >= 0.6x proxy at c=32; gateway p50 - proxy p50 <= 3 ms at c=8.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { defaultCatalogue, TokenCounter } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import OpenAI, { toFile } from 'openai';
import { makeDataset, makeFineTune, makeLicense } from '../test/api/fixtures.ts';
import { invoices } from './dataset-invoices.ts';
import { pidCpuMs, postgresCpuMs, requireServers, scratchDatabase } from './support.ts';

const { baseUrl, redisUrl } = requireServers('gateway bench');
const CONCURRENCIES = [1, 8, 32];
const CALLS: Record<number, number> = { 1: 200, 8: 800, 32: 1_600 };
const WARMUP = 40;

function startProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join('bench', 'gateway-process.ts'), ...args], {
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
  name: 'direct' | 'proxy' | 'gateway';
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
  const pg0 = target.name === 'gateway' ? await postgresCpuMs(db) : null;
  const t0 = performance.now();
  const errors = await once(calls, latencies);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = target.pid ? pidCpuMs(target.pid) : 0;
  const pg1 = target.name === 'gateway' ? await postgresCpuMs(db) : null;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    perSecond: calls / seconds,
    p50: q(0.5),
    p99: q(0.99),
    errors,
    cpuMsPerCall: target.pid ? (cpu1 - cpu0) / calls : null,
    pgMsPerCall: pg0 !== null && pg1 !== null ? (pg1 - pg0) / calls : null,
  };
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
    const api = await startProcess(['api'], {
      ...process.env,
      // GATEWAY_BENCH_ASYNC_COMMIT=1: the API's sessions commit without waiting for the WAL flush, a
      // diagnostic of how much of the gateway's latency is the two commits' fsync (not a setting we ship).
      DATABASE_URL:
        process.env.GATEWAY_BENCH_ASYNC_COMMIT === '1'
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
    });
    children.push(api.child);
    const proxy = await startProcess(['proxy', sim.url], { ...process.env });
    children.push(proxy.child);

    const targets: Target[] = [
      { name: 'direct', url: sim.url, key: 'sk-sim', ...(sim.child.pid ? { pid: sim.child.pid } : {}) },
      { name: 'proxy', url: proxy.url, key: 'sk-sim', ...(proxy.child.pid ? { pid: proxy.child.pid } : {}) },
      {
        name: 'gateway',
        url: `${api.url}/v1`,
        key: lic.key,
        ...(api.child.pid ? { pid: api.child.pid } : {}),
      },
    ];
    const load0 = loadavg();
    console.log(
      `gateway bench: prompt ${promptTokens} tokens (o200k), max_tokens 300, ${cpus().length} CPUs, load ${load0.map((l) => l.toFixed(1)).join(' ')}${process.env.GATEWAY_BENCH_ASYNC_COMMIT === '1' ? ', API sessions with synchronous_commit=off (diagnostic)' : ''}`,
    );
    const results: Record<number, Record<string, Run>> = {};
    for (const c of CONCURRENCIES) {
      results[c] = {};
      for (const target of targets) {
        const run = await measure(target, c, CALLS[c] ?? 400, body, scratch.db);
        (results[c] as Record<string, Run>)[target.name] = run;
        const cpu =
          run.cpuMsPerCall === null
            ? ''
            : `  ${target.name === 'direct' ? 'simulator' : target.name} cpu ${run.cpuMsPerCall.toFixed(2)} ms/call`;
        const pg = run.pgMsPerCall === null ? '' : `  postgres cpu ${run.pgMsPerCall.toFixed(2)} ms/call`;
        console.log(
          `c=${String(c).padStart(2)} ${target.name.padEnd(7)} ${run.perSecond.toFixed(0).padStart(6)} calls/s  p50 ${run.p50.toFixed(2).padStart(7)} ms  p99 ${run.p99.toFixed(2).padStart(7)} ms  errors ${run.errors}${cpu}${pg}`,
        );
      }
    }
    const r32 = results[32] as Record<string, Run>;
    const r8 = results[8] as Record<string, Run>;
    const ratio = (r32.gateway?.perSecond ?? 0) / (r32.proxy?.perSecond ?? 1);
    const added = (r8.gateway?.p50 ?? 0) - (r8.proxy?.p50 ?? 0);
    for (const c of CONCURRENCIES) {
      const r = results[c] as Record<string, Run>;
      console.log(
        `c=${String(c).padStart(2)} gateway/proxy throughput ${((r.gateway?.perSecond ?? 0) / (r.proxy?.perSecond ?? 1)).toFixed(2)}x, proxy/direct ${((r.proxy?.perSecond ?? 0) / (r.direct?.perSecond ?? 1)).toFixed(2)}x, gateway p50 - proxy p50 ${((r.gateway?.p50 ?? 0) - (r.proxy?.p50 ?? 0)).toFixed(2)} ms`,
      );
    }
    console.log(
      `target c=32 gateway >= 0.6x proxy: ${ratio.toFixed(2)}x ${ratio >= 0.6 ? 'ok' : 'TARGET MISSED'}`,
    );
    console.log(
      `target c=8 added p50 <= 3 ms: ${added.toFixed(2)} ms ${added <= 3 ? 'ok' : 'TARGET MISSED'}`,
    );
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
