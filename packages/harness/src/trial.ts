// A whole-pipeline trial: the six workers as separate processes, the provider simulator (with faults)
// behind the real SDK, a loopback SMTP server, a database of its own and a BullMQ prefix of its own.
// It enqueues fine-tune requests as an upstream app would, optionally hurts the system while they run
// (SIGKILL workers, SIGTERM them, flush Redis, terminate Postgres backends), waits until every request
// is terminal, then counts what exactly-once promises: one provider job per fine-tune, one charge per
// succeeded fine-tune, one e-mail per recipient per fine-tune, a clean ledger audit.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FineTuneRequestInput, FineTuneRequestProducer } from '@tuneline/contracts';
import { createDb, type Db, migrateToLatest } from '@tuneline/db';
import {
  dropDatabase,
  ensureDatabase,
  freePort,
  invoiceModelConfig,
  readServiceManifests,
  type Supervisor,
  superviseServices,
  syntheticInvoices,
} from '@tuneline/devstack';
import { auditLedger, ensureLicenseAccount, grantCredits } from '@tuneline/ledger';
import { type FaultConfigInput, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { type SmtpTestServer, startSmtpServer } from './smtp.ts';

export interface ChaosPlan {
  /** SIGKILL a worker this often (ms); the supervisor restarts it. */
  killEveryMs?: number;
  /** `random`: any worker each time; `each-once`: every service once, in a shuffled order, then stop. */
  killMode?: 'random' | 'each-once';
  /** SIGTERM every service once, in turn, this long apart (a rolling restart under load). */
  terminateEveryMs?: number;
  /** Delete every key of the trial's BullMQ prefix once, this long after the requests were enqueued. */
  flushRedisAfterMs?: number;
  /** Terminate every Postgres backend of the trial's database once, this long after the enqueue. */
  terminateBackendsAfterMs?: number;
}

export interface TrialOptions {
  /** Repository root (where services/ lives). */
  root: string;
  /** A Postgres server URL: the trial creates (and drops) a database of its own on it. */
  serverDatabaseUrl: string;
  redisUrl: string;
  requests: number;
  /** Documents per request (at least 10). */
  documents?: number;
  /** Licenses the requests are spread over. */
  licenses?: number;
  /** Instances per service (default 1 each). */
  scale?: Record<string, number>;
  faults?: FaultConfigInput;
  /** Simulator speed: simulated durations are divided by it (default 5,000). */
  speed?: number;
  chaos?: ChaosPlan;
  /** Extra Node.js flags for the worker processes (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra worker environment (overrides the trial's defaults). */
  workerEnv?: NodeJS.ProcessEnv;
  timeoutMs: number;
  seed?: number;
  /** Progress lines (about every 2 s) and chaos events. */
  progress?: (line: string) => void;
  /** Every line the workers write (JSON logs), for debugging a failed trial. */
  workerOutput?: (service: string, line: string) => void;
  /** Keep the trial's database (for inspection) instead of dropping it. */
  keepDatabase?: boolean;
}

export interface TrialEvent {
  atMs: number;
  what: string;
}

export interface TrialReport {
  requests: number;
  /** Requests with a settled fine-tune and every notification sent or failed for good. */
  terminal: number;
  /** Request ids that were not terminal when the trial stopped. */
  notTerminal: string[];
  fineTunes: Record<string, number>;
  /** Fine-tunes whose provider job count is not exactly 1 (a value of 0 or 2+). */
  providerJobsNotOne: { fineTuneId: string; jobs: number }[];
  /** Provider jobs whose metadata names no fine-tune of this trial. */
  orphanProviderJobs: number;
  /** Succeeded fine-tunes with a charge count other than 1, and other fine-tunes charged more than once. */
  chargesNotOne: { fineTuneId: string; status: string; charges: number }[];
  emails: {
    expected: number;
    delivered: number;
    /** (fine-tune, recipient) pairs with no message received. */
    missing: number;
    /** Extra copies received over SMTP for a (fine-tune, recipient) pair. */
    duplicates: number;
  };
  auditViolations: number;
  /** Requests whose correlationId appears in the logs of all six services. */
  correlatedAcrossStages: number;
  /** Requests re-sent by the upstream because Postgres had not stored them (after the Redis flush). */
  resubmitted: number;
  /** Provider faults the simulator injected, by kind. */
  faultsInjected: Record<string, number>;
  events: TrialEvent[];
  /** SIGTERMs: how long each process took to exit and its exit code. */
  terminations: { service: string; ms: number; code: number | null }[];
  /** Exits of worker processes other than the trial's own SIGKILLs and SIGTERMs (crashes). */
  unexpectedExits: number;
  /** From the first enqueue to the last request turning terminal. */
  wallMs: number;
  fineTunesPerSecond: number;
  /**
   * Per queue, from the workers' own /metrics at the end (processes restarted by the chaos count
   * only since their restart): jobs completed, retried and failed, rate-limit pauses, handler seconds.
   */
  stages: Record<
    string,
    { completed: number; retried: number; failed: number; rateLimited: number; handlerSeconds: number }
  >;
  /**
   * CPU seconds each service's processes used from the first enqueue to the end (Linux /proc; start-up
   * excluded; a process restarted meanwhile counts from its restart), and this process's own.
   */
  cpuSeconds: Record<string, number>;
  /** Per stage, milliseconds (p50, p95, p99, max), from the rows' timestamps. */
  stageLatency: Record<string, { p50: number; p95: number; p99: number; max: number }>;
}

const SERVICES = ['dataset-builder', 'uploader', 'trainer', 'poller', 'billing', 'notifier'] as const;

/** The checks of a report that failed, as readable lines; empty when everything held. */
export function failedChecks(report: TrialReport): string[] {
  const failed: string[] = [];
  if (report.terminal !== report.requests)
    failed.push(
      `${report.requests - report.terminal} of ${report.requests} requests not terminal (${report.notTerminal.slice(0, 5).join(', ')})`,
    );
  if (report.providerJobsNotOne.length)
    failed.push(`${report.providerJobsNotOne.length} fine-tunes without exactly one provider job`);
  if (report.orphanProviderJobs) failed.push(`${report.orphanProviderJobs} provider jobs of no fine-tune`);
  if (report.chargesNotOne.length) failed.push(`${report.chargesNotOne.length} fine-tunes charged wrongly`);
  if (report.emails.missing) failed.push(`${report.emails.missing} e-mails never delivered`);
  if (report.emails.duplicates) failed.push(`${report.emails.duplicates} duplicate e-mails delivered`);
  if (report.auditViolations) failed.push(`${report.auditViolations} ledger audit violations`);
  if (report.correlatedAcrossStages !== report.requests)
    failed.push(
      `${report.requests - report.correlatedAcrossStages} requests whose correlationId is missing from some stage's logs`,
    );
  if (report.unexpectedExits) failed.push(`${report.unexpectedExits} worker processes exited unexpectedly`);
  return failed;
}

/** The report as the lines `npm run chaos` prints. */
export function formatReport(report: TrialReport): string[] {
  const pct = (v: { p50: number; p95: number; p99: number; max: number }) =>
    `p50 ${v.p50} ms · p95 ${v.p95} ms · p99 ${v.p99} ms · max ${v.max} ms`;
  return [
    `requests terminal            ${report.terminal}/${report.requests}`,
    `fine-tunes                   ${Object.entries(report.fineTunes)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · ')}`,
    `provider jobs per fine-tune  ${report.providerJobsNotOne.length === 0 ? 'exactly 1 for every fine-tune' : `${report.providerJobsNotOne.length} not 1`}; orphans ${report.orphanProviderJobs}`,
    `charges per succeeded        ${report.chargesNotOne.length === 0 ? 'exactly 1 for every one' : `${report.chargesNotOne.length} wrong`}`,
    `e-mails                      ${report.emails.delivered} delivered of ${report.emails.expected} expected · missing ${report.emails.missing} · duplicates ${report.emails.duplicates}`,
    `ledger audit                 ${report.auditViolations} violations`,
    `correlationId in all stages  ${report.correlatedAcrossStages}/${report.requests} requests`,
    `faults injected              ${
      Object.entries(report.faultsInjected)
        .map(([k, v]) => `${k} ${v}`)
        .join(' · ') || 'none'
    }`,
    `chaos                        ${report.events.length} events; ${report.resubmitted} requests re-sent by the upstream after the flush`,
    ...report.terminations.map((t) => `  SIGTERM ${t.service}: exit ${t.code} after ${t.ms} ms`),
    `unexpected worker exits      ${report.unexpectedExits}`,
    `throughput                   ${report.fineTunesPerSecond.toFixed(2)} fine-tunes/s (${(report.wallMs / 1000).toFixed(1)} s wall)`,
    ...Object.entries(report.stageLatency).map(([stage, v]) => `  ${stage.padEnd(40)}${pct(v)}`),
    `CPU seconds during the run    ${Object.entries(report.cpuSeconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(' · ')}`,
    ...cpuPerFineTune(report),
    'jobs per queue (from /metrics)',
    ...Object.entries(report.stages).map(
      ([queue, v]) =>
        `  ${queue.padEnd(40)}completed ${v.completed} · retried ${v.retried} · failed ${v.failed} · rate-limited ${v.rateLimited} · handler ${
          v.completed ? ((v.handlerSeconds / (v.completed + v.retried + v.failed)) * 1000).toFixed(1) : '—'
        } ms/job`,
    ),
  ];
}

/** Deletes every key of a BullMQ prefix: what "Redis lost its data" looks like to one deployment. */
export async function deleteQueueKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export async function runTrial(opts: TrialOptions): Promise<TrialReport> {
  const say = opts.progress ?? (() => {});
  const seed = opts.seed ?? 2026;
  const tag = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbName = `tuneline_trial_${tag}`;
  const databaseUrl = await ensureDatabase(opts.serverDatabaseUrl, dbName);
  const db = createDb(databaseUrl, { max: 4, applicationName: 'tuneline-trial' });
  const prefix = `tltrial-${tag}`;
  const storageDir = mkdtempSync(join(tmpdir(), 'tuneline-trial-'));
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  let smtp: SmtpTestServer | undefined;
  let sim: RunningSimulator | undefined;
  let supervisor: Supervisor | undefined;
  const output = new LogCollector();
  try {
    await migrateToLatest(db);
    smtp = await startSmtpServer();
    const webhookPort = await freePort();
    const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
    sim = await startSimulator({
      port: 0,
      seed,
      speed: opts.speed ?? 5_000,
      webhookUrl: `http://127.0.0.1:${webhookPort}/webhooks/provider`,
      webhookSecret,
      faults: opts.faults ?? {},
    });

    const licenses = Array.from({ length: opts.licenses ?? 5 }, (_, i) => `trial-${tag}-lic-${i}`);
    for (const licenseId of licenses) {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('licenses').values({ id: licenseId, name: licenseId }).execute();
        await ensureLicenseAccount(tx, licenseId);
        await grantCredits(tx, { grantId: `trial-${licenseId}`, licenseId, amount: 100_000_000n });
      });
    }

    supervisor = superviseServices({
      root: opts.root,
      manifests: readServiceManifests(opts.root),
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        REDIS_URL: opts.redisUrl,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'info',
        STORAGE_DIR: storageDir,
        PROVIDER: 'simulator',
        SIMULATOR_URL: sim.url,
        SIMULATOR_API_KEY: sim.apiKey,
        PROVIDER_WEBHOOK_SECRET: webhookSecret,
        WEBHOOK_PORT: String(webhookPort),
        SMTP_URL: smtp.url,
        WORKER_CONCURRENCY: '8',
        // Postgres allows 100 connections: a trial of 12 processes must leave room for the rest.
        DATABASE_POOL_MAX: '4',
        POLL_INTERVAL_MS: '2000',
        POLL_MIN_INTERVAL_MS: '250',
        POLL_SWEEP_MAX_AGE_MS: '200',
        OUTBOX_INTERVAL_MS: '200',
        RECOVERY_INTERVAL_MS: '3000',
        JOB_LOCK_MS: '5000',
        SHUTDOWN_TIMEOUT_MS: '10000',
        ...opts.workerEnv,
      },
      // One webhook endpoint per deployment: behind a load balancer in production; here instance 0's.
      instanceEnv: (service, instance) =>
        service === 'poller' && instance > 0 ? { WEBHOOK_PORT: undefined } : {},
      scale: opts.scale,
      nodeArgs: opts.nodeArgs,
      basePort: 0,
      onOutput: (service, chunk, instance) => {
        output.add(service, chunk, instance);
        if (opts.workerOutput)
          for (const line of chunk.split('\n')) if (line) opts.workerOutput(service, line);
      },
    });
    const expectedProcesses = supervisor.processes.length;
    say(`starting ${expectedProcesses} worker processes (prefix ${prefix}, database ${dbName})`);
    await waitUntil(
      () => output.started >= expectedProcesses,
      180_000,
      () => 'workers to start',
      output,
    );

    // The upstream app: enqueue every request; re-send any that Postgres has not stored yet when asked.
    const producer = new FineTuneRequestProducer({ connection: redis, prefix });
    const inputs = Array.from({ length: opts.requests }, (_, i) =>
      requestFor(i, licenses[i % licenses.length] as string, seed, opts.documents ?? 12),
    );
    const cpuAtStart = workerCpuSeconds(supervisor);
    const ownCpuAtStart = process.cpuUsage();
    const serversAtStart = await serverCpuSeconds(db, redis);
    const t0 = Date.now();
    const events: TrialEvent[] = [];
    const event = (what: string) => {
      events.push({ atMs: Date.now() - t0, what });
      say(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
    };
    // Many upstream clients at once, as a busy capture app would send them.
    await inParallel(inputs, 16, async (input) => {
      const result = await producer.enqueue(input, { correlationId: `corr-${input.requestId}` });
      if (!result.ok) throw new Error(`enqueue ${input.requestId}: ${result.message}`);
    });
    event(`${inputs.length} requests enqueued`);

    let resubmitted = 0;
    let flushed = false;
    const resubmitMissing = async () => {
      const stored = new Set(
        (
          await db
            .selectFrom('fine_tune_requests')
            .select('request_id')
            .where('license_id', 'in', licenses)
            .execute()
        ).map((r) => r.request_id),
      );
      for (const input of inputs) {
        if (stored.has(input.requestId)) continue;
        const result = await producer.enqueue(input, { correlationId: `corr-${input.requestId}` });
        if (result.ok && !result.duplicate) resubmitted++;
      }
    };

    const chaos = startChaos(opts.chaos ?? {}, {
      supervisor,
      seed,
      event,
      flushRedis: async () => {
        const deleted = await deleteQueueKeys(redis, prefix);
        flushed = true;
        event(`Redis flushed: ${deleted} keys of ${prefix} deleted`);
      },
      terminateBackends: async () => {
        const killed = await sql<{ n: number }>`
          select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
          where datname = ${dbName} and pid <> pg_backend_pid()`.execute(db);
        event(`Postgres: ${killed.rows[0]?.n ?? 0} backends terminated`);
      },
    });

    // Wait until every request is terminal, printing progress.
    const deadline = t0 + opts.timeoutMs;
    let state = await pipelineState(db, licenses);
    let lastPrint = 0;
    let lastResubmit = Date.now();
    while (state.terminalRequests.length < opts.requests && Date.now() < deadline) {
      // Not faster: this query is the harness's own load on Postgres, not the pipeline's.
      await sleep(1_000);
      state = await pipelineState(db, licenses).catch(() => state);
      if (flushed && Date.now() - lastResubmit > 2_000) {
        lastResubmit = Date.now();
        await resubmitMissing().catch(() => {});
      }
      if (Date.now() - lastPrint > 2_000) {
        lastPrint = Date.now();
        say(
          `[${((Date.now() - t0) / 1000).toFixed(1)}s] stored ${state.stored} · datasets ready ${state.datasets} · fine-tunes ${state.fineTunes} (finished ${state.finished}) · settled ${state.settled} · e-mails ${state.mailsDone}/${state.mailsTotal} · terminal ${state.terminalRequests.length}/${opts.requests}`,
        );
      }
    }
    const wallMs = Date.now() - t0;
    const cpuSeconds = cpuSince(cpuAtStart, workerCpuSeconds(supervisor));
    const own = process.cpuUsage(ownCpuAtStart);
    cpuSeconds[RIG_CPU] = (own.user + own.system) / 1e6;
    const serversAtEnd = await serverCpuSeconds(db, redis);
    for (const [name, seconds] of Object.entries(serversAtEnd)) {
      const before = serversAtStart[name];
      if (before !== undefined) cpuSeconds[name] = seconds - before;
    }
    await chaos.stop();
    await producer.close();
    // Let in-flight sends finish, then stop the workers (their logs complete the correlation check).
    await sleep(500);
    const stages = await scrapeStageMetrics(output.healthPorts());
    const exitsBeforeStop = supervisor.exits.length;
    await supervisor.stop(20_000);

    const report = await collectReport({
      db,
      licenses,
      inputs,
      sim,
      smtp,
      output,
      events,
      wallMs,
      resubmitted,
      terminations: chaos.terminations,
      exits: exitsBeforeStop,
      sigkills: chaos.kills,
      stages,
      cpuSeconds,
    });
    return report;
  } catch (err) {
    say(`trial failed: ${err instanceof Error ? err.message : String(err)}`);
    say(output.tail(4_000));
    throw err;
  } finally {
    await supervisor?.stop(5_000);
    await sim?.close();
    await smtp?.close();
    await deleteQueueKeys(redis, prefix).catch(() => 0);
    redis.disconnect();
    await db.destroy();
    rmSync(storageDir, { recursive: true, force: true });
    if (!opts.keepDatabase) await dropDatabase(opts.serverDatabaseUrl, dbName);
  }
}

function requestFor(i: number, licenseId: string, seed: number, documents: number): FineTuneRequestInput {
  const requestId = `trial-${String(i).padStart(4, '0')}`;
  // One or two recipients, so per-address delivery is exercised.
  const recipients = i % 2 === 0 ? `ops+${i}@example.com` : `ops+${i}@example.com; finance+${i}@example.org`;
  return {
    requestId,
    licenseId,
    documents: syntheticInvoices({ count: documents, seed: seed + i, idPrefix: `${requestId}-` }),
    modelConfig: invoiceModelConfig,
    dump: 'mapped',
    testPercent: 0,
    baseModel: 'gpt-4o-mini-2024-07-18',
    job: { description: `trial request ${i}`, notifyEmails: recipients, hyperparameters: 'auto' },
    autoTrain: true,
  };
}

interface PipelineState {
  stored: number;
  datasets: number;
  fineTunes: number;
  finished: number;
  settled: number;
  mailsTotal: number;
  mailsDone: number;
  /**
   * Request ids that are terminal: their fine-tune is settled and none of its notifications is still
   * pending (sent, or failed for good). The one definition both the progress lines and the report use.
   */
  terminalRequests: string[];
}

async function pipelineState(db: Db, licenses: string[]): Promise<PipelineState> {
  const row = await sql<PipelineState>`
    with reqs as (select id, request_id from fine_tune_requests where license_id in (${sql.join(licenses)})),
    ds as (select d.id, r.request_id from datasets d join reqs r on r.id = d.request_row_id),
    ft as (select f.*, ds.request_id from fine_tunes f join ds on ds.id = f.dataset_id),
    n as (select n.* from notifications n join ft on ft.id = n.fine_tune_id)
    select
      (select count(*) from reqs)::int as stored,
      (select count(*) from datasets d join reqs r on r.id = d.request_row_id
        where d.status in ('ready', 'uploading', 'uploaded'))::int as datasets,
      (select count(*) from ft)::int as "fineTunes",
      (select count(*) from ft where finished_at is not null)::int as finished,
      (select count(*) from ft where settled_at is not null)::int as settled,
      (select count(*) from n)::int as "mailsTotal",
      (select count(*) from n where status in ('sent', 'failed'))::int as "mailsDone",
      array(select distinct ft.request_id from ft where settled_at is not null
        and not exists (select 1 from n where n.fine_tune_id = ft.id and n.status = 'pending')) as "terminalRequests"
  `.execute(db);
  return row.rows[0] as PipelineState;
}

interface ChaosContext {
  supervisor: Supervisor;
  seed: number;
  event(what: string): void;
  flushRedis(): Promise<void>;
  terminateBackends(): Promise<void>;
}

function startChaos(plan: ChaosPlan, ctx: ChaosContext) {
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<unknown>[] = [];
  const terminations: TrialReport['terminations'] = [];
  let kills = 0;
  let random = ctx.seed * 7919 + 1;
  const next = () => {
    random = (random * 48271) % 2147483647;
    return random / 2147483647;
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T;
  const instancesOf = (service: string) =>
    ctx.supervisor.processes.filter((p) => p.service === service).map((p) => p.instance);

  if (plan.killEveryMs) {
    const order = [...SERVICES].sort(() => next() - 0.5);
    const timer = setInterval(() => {
      const service = plan.killMode === 'each-once' ? order.shift() : pick(SERVICES);
      if (!service) return clearInterval(timer);
      const instance = pick(instancesOf(service));
      kills++;
      ctx.supervisor.kill(service, instance);
      ctx.event(`SIGKILL ${service}#${instance}`);
    }, plan.killEveryMs);
    timers.push(timer);
  }
  if (plan.terminateEveryMs) {
    const order = [...SERVICES];
    const timer = setInterval(() => {
      const service = order.shift();
      if (!service) return clearInterval(timer);
      const instance = pick(instancesOf(service));
      ctx.event(`SIGTERM ${service}#${instance}`);
      pending.push(
        ctx.supervisor.terminate(service, instance).then((r) => {
          terminations.push({ service, ms: r.ms, code: r.code });
          ctx.event(`${service}#${instance} exited ${r.code ?? r.signal} after ${r.ms} ms`);
        }),
      );
    }, plan.terminateEveryMs);
    timers.push(timer);
  }
  const once = (afterMs: number | undefined, action: () => Promise<void>) => {
    if (afterMs === undefined) return;
    timers.push(
      setTimeout(() => {
        pending.push(action().catch((err: unknown) => ctx.event(`chaos action failed: ${String(err)}`)));
      }, afterMs),
    );
  };
  once(plan.flushRedisAfterMs, ctx.flushRedis);
  once(plan.terminateBackendsAfterMs, ctx.terminateBackends);

  return {
    terminations,
    get kills() {
      return kills;
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(pending);
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc; throws where there is none. */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime is 14th, stime 15th overall.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ on Linux
}

/** CPU seconds used so far by each running worker process, keyed by pid (Linux only; else empty). */
function workerCpuSeconds(supervisor: Supervisor): Map<number, { service: string; seconds: number }> {
  const out = new Map<number, { service: string; seconds: number }>();
  for (const p of supervisor.processes) {
    if (!p.child.pid) continue;
    try {
      out.set(p.child.pid, { service: p.service, seconds: procCpuSeconds(p.child.pid) });
    } catch {
      // Not Linux, or the process is gone.
    }
  }
  return out;
}

function cpuSince(
  before: Map<number, { service: string; seconds: number }>,
  after: Map<number, { service: string; seconds: number }>,
): Record<string, number> {
  const perService: Record<string, number> = {};
  for (const [pid, { service, seconds }] of after) {
    perService[service] = (perService[service] ?? 0) + seconds - (before.get(pid)?.seconds ?? 0);
  }
  return perService;
}

/**
 * The run's CPU per fine-tune, and the rate that much CPU allows on this machine's cores if nothing
 * else ran: what a throughput target has to fit into.
 */
function cpuPerFineTune(report: TrialReport): string[] {
  const fineTunes = report.fineTunesPerSecond * (report.wallMs / 1000);
  if (!fineTunes || Object.keys(report.cpuSeconds).length === 0) return [];
  const msOf = (seconds: number) => (seconds / fineTunes) * 1000;
  const totalMs = msOf(Object.values(report.cpuSeconds).reduce((a, b) => a + b, 0));
  const outside = Object.entries(report.cpuSeconds).filter(([k]) => OUTSIDE_THE_WORKERS.has(k));
  const outsideMs = msOf(outside.reduce((sum, [, v]) => sum + v, 0));
  const cores = availableParallelism();
  return [
    `CPU per fine-tune             ${totalMs.toFixed(0)} ms in all (${Object.entries(report.cpuSeconds)
      .map(([k, v]) => `${k} ${msOf(v).toFixed(1)}`)
      .join(' · ')}); ${cores} cores fit at most ${((cores * 1000) / totalMs).toFixed(1)} fine-tunes/s`,
    // What a throughput target leaves the workers once the rest of the machine's work is paid for.
    `  of which the workers         ${(totalMs - outsideMs).toFixed(0)} ms; outside them ${outsideMs.toFixed(0)} ms (${outside
      .map(([k]) => k)
      .join(', ')})`,
  ];
}

/** The cpuSeconds entries that are not worker processes. */
const RIG_CPU = 'simulator + SMTP + harness';
const POSTGRES_CPU = 'postgres';
const REDIS_CPU = 'redis (whole server)';
const OUTSIDE_THE_WORKERS = new Set([RIG_CPU, POSTGRES_CPU, REDIS_CPU]);

/**
 * CPU seconds used so far by the servers: this database's backends (from /proc, so only when Postgres
 * runs on this machine; a backend that exits takes its share with it) and the whole Redis server (its
 * INFO, so every client of that Redis counts). Left out when they cannot be read.
 */
async function serverCpuSeconds(db: Db, redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(db);
    let seconds = 0;
    for (const { pid } of rows) seconds += procCpuSeconds(pid);
    if (Number.isFinite(seconds)) out[POSTGRES_CPU] = seconds;
  } catch {
    // Postgres elsewhere (or not Linux): its CPU is not ours to read.
  }
  try {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
    const seconds = field('used_cpu_user') + field('used_cpu_sys');
    if (Number.isFinite(seconds)) out[REDIS_CPU] = seconds;
  } catch {
    // INFO refused (a managed Redis may disable it).
  }
  return out;
}

/** Sums the job counters and handler time of every worker's /metrics, per queue. */
async function scrapeStageMetrics(ports: number[]): Promise<TrialReport['stages']> {
  const stages: TrialReport['stages'] = {};
  const stage = (queue: string) => {
    stages[queue] ??= { completed: 0, retried: 0, failed: 0, rateLimited: 0, handlerSeconds: 0 };
    return stages[queue];
  };
  for (const port of ports) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    for (const line of text.split('\n')) {
      const sample = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
      if (!sample?.[1] || sample[2] === undefined) continue;
      const labels = Object.fromEntries([...sample[2].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const value = Number(sample[3]);
      if (!labels.queue) continue;
      if (sample[1] === 'tuneline_jobs_total') {
        const s = stage(labels.queue);
        if (labels.outcome === 'completed') s.completed += value;
        else if (labels.outcome === 'retried') s.retried += value;
        else if (labels.outcome === 'failed') s.failed += value;
        else if (labels.outcome === 'rate_limited') s.rateLimited += value;
      } else if (sample[1] === 'tuneline_job_duration_seconds_sum') {
        stage(labels.queue).handlerSeconds += value;
      }
    }
  }
  return stages;
}

/** Worker output: counts started services and maps each correlationId to the services that logged it. */
class LogCollector {
  started = 0;
  /** Health port of each running process (latest start wins), from its "health server listening" line. */
  private readonly ports = new Map<string, number>();
  readonly services = new Map<string, Set<string>>();
  private readonly recent: string[] = [];
  private readonly partial = new Map<string, string>();

  add(service: string, chunk: string, instance = 0): void {
    const key = `${service}#${instance}`;
    const text = (this.partial.get(key) ?? '') + chunk;
    const lines = text.split('\n');
    this.partial.set(key, lines.pop() ?? '');
    for (const line of lines) {
      if (!line) continue;
      this.recent.push(`[${service}] ${line}`);
      if (this.recent.length > 200) this.recent.shift();
      if (line.includes('"service started"')) this.started++;
      const health = /"healthPort":(\d+)/.exec(line);
      if (health?.[1]) this.ports.set(key, Number(health[1]));
      const match = /"correlationId":"([^"]+)"/.exec(line);
      if (match?.[1]) {
        const seen = this.services.get(match[1]) ?? new Set<string>();
        seen.add(service);
        this.services.set(match[1], seen);
      }
    }
  }

  healthPorts(): number[] {
    return [...this.ports.values()];
  }

  tail(chars: number): string {
    return this.recent.join('\n').slice(-chars);
  }
}

async function collectReport(input: {
  db: Db;
  licenses: string[];
  inputs: FineTuneRequestInput[];
  sim: RunningSimulator;
  smtp: SmtpTestServer;
  output: LogCollector;
  events: TrialEvent[];
  wallMs: number;
  resubmitted: number;
  terminations: TrialReport['terminations'];
  /** Worker exits seen before the trial stopped the workers. */
  exits: number;
  sigkills: number;
  stages: TrialReport['stages'];
  cpuSeconds: Record<string, number>;
}): Promise<TrialReport> {
  const { db, licenses } = input;
  const fineTunes = await db
    .selectFrom('fine_tunes')
    .select(['fine_tunes.id', 'fine_tunes.status', 'fine_tunes.notify_emails'])
    .where('fine_tunes.license_id', 'in', licenses)
    .execute();
  const terminalRequests = new Set((await pipelineState(db, licenses)).terminalRequests);

  const byStatus: Record<string, number> = {};
  for (const f of fineTunes) byStatus[f.status] = (byStatus[f.status] ?? 0) + 1;

  // Provider jobs per fine-tune, from the simulator's own records.
  const jobsPerFineTune = new Map<string, number>();
  let orphanProviderJobs = 0;
  const known = new Set(fineTunes.map((f) => f.id));
  for (const job of input.sim.admin.state().jobs) {
    const id = job.metadata?.fine_tune_id;
    if (!id || !known.has(id)) orphanProviderJobs++;
    else jobsPerFineTune.set(id, (jobsPerFineTune.get(id) ?? 0) + 1);
  }
  const providerJobsNotOne = fineTunes
    .filter((f) => f.status !== 'insufficient_credits')
    .map((f) => ({ fineTuneId: f.id, jobs: jobsPerFineTune.get(f.id) ?? 0 }))
    .filter((x) => x.jobs !== 1);

  // Charges: the ledger's post transfers per fine-tune.
  const posts = new Map<string, number>();
  for (const row of await db
    .selectFrom('ledger_transfers')
    .select(['fine_tune_id'])
    .where('kind', '=', 'post')
    .where('license_id', 'in', licenses)
    .execute()) {
    if (row.fine_tune_id) posts.set(row.fine_tune_id, (posts.get(row.fine_tune_id) ?? 0) + 1);
  }
  const chargesNotOne = fineTunes
    .map((f) => ({ fineTuneId: f.id, status: f.status, charges: posts.get(f.id) ?? 0 }))
    .filter((x) => (x.status === 'succeeded' ? x.charges !== 1 : x.charges > 1));

  // E-mails: what the SMTP server received, per (fine-tune, recipient).
  const received = new Map<string, number>();
  for (const mail of input.smtp.received) {
    const messageId = mail.headers['message-id'] ?? '';
    const fineTuneId = /<ft-([0-9a-f-]{36})-/.exec(messageId)?.[1] ?? 'unknown';
    for (const to of mail.to) {
      const key = `${fineTuneId} ${to.toLowerCase()}`;
      received.set(key, (received.get(key) ?? 0) + 1);
    }
  }
  let expected = 0;
  let missing = 0;
  for (const f of fineTunes) {
    for (const to of f.notify_emails) {
      expected++;
      if (!received.get(`${f.id} ${to.toLowerCase()}`)) missing++;
    }
  }
  let duplicates = 0;
  for (const n of received.values()) if (n > 1) duplicates += n - 1;

  const correlatedAcrossStages = input.inputs.filter((i) => {
    const seen = input.output.services.get(`corr-${i.requestId}`);
    return seen !== undefined && SERVICES.every((s) => seen.has(s));
  }).length;

  const faultsInjected: Record<string, number> = {};
  for (const f of input.sim.admin.state().faultLog) {
    if (f.fault !== 'none') faultsInjected[f.fault] = (faultsInjected[f.fault] ?? 0) + 1;
  }

  // Every exit the trial did not cause itself is a crash.
  const caused = input.sigkills + input.terminations.length;
  const unexpectedExits = Math.max(0, input.exits - caused);

  const stageLatency = await stageLatencies(db, licenses);
  return {
    requests: input.inputs.length,
    terminal: terminalRequests.size,
    notTerminal: input.inputs.map((i) => i.requestId).filter((id) => !terminalRequests.has(id)),
    fineTunes: byStatus,
    providerJobsNotOne,
    orphanProviderJobs,
    chargesNotOne,
    emails: { expected, delivered: input.smtp.received.length, missing, duplicates },
    auditViolations: (await auditLedger(db)).violations.length,
    correlatedAcrossStages,
    resubmitted: input.resubmitted,
    faultsInjected,
    events: input.events,
    terminations: input.terminations,
    unexpectedExits,
    wallMs: input.wallMs,
    fineTunesPerSecond: terminalRequests.size / (input.wallMs / 1000),
    stageLatency,
    stages: input.stages,
    cpuSeconds: input.cpuSeconds,
  };
}

/** Stage latencies from the rows' own timestamps (the database clock, so no skew between processes). */
async function stageLatencies(db: Db, licenses: string[]): Promise<TrialReport['stageLatency']> {
  const result = await sql<{ stage: string; p50: number; p95: number; p99: number; max: number }>`
    with t as (
      select r.created_at as received, d.created_at as dataset_created, d.updated_at as dataset_updated,
             f.created_at as ft_created, f.settled_at,
             (select max(n.sent_at) from notifications n where n.fine_tune_id = f.id) as mailed
      from fine_tune_requests r
      join datasets d on d.request_row_id = r.id
      join fine_tunes f on f.dataset_id = d.id
      where r.license_id in (${sql.join(licenses)})
    ),
    spans as (
      select 'build (received → dataset)' as stage, extract(epoch from dataset_created - received) * 1000 as ms from t
      union all select 'upload + create (dataset → job)', extract(epoch from ft_created - dataset_created) * 1000 from t
      union all select 'train, follow, settle (job → charged)', extract(epoch from settled_at - ft_created) * 1000 from t
      union all select 'notify (charged → last e-mail)', extract(epoch from mailed - settled_at) * 1000 from t
      union all select 'end to end (received → last e-mail)', extract(epoch from mailed - received) * 1000 from t
    )
    select stage,
           round(percentile_cont(0.5) within group (order by ms))::int as p50,
           round(percentile_cont(0.95) within group (order by ms))::int as p95,
           round(percentile_cont(0.99) within group (order by ms))::int as p99,
           round(max(ms))::int as max
    from spans where ms is not null group by stage
  `.execute(db);
  const order = [
    'build (received → dataset)',
    'upload + create (dataset → job)',
    'train, follow, settle (job → charged)',
    'notify (charged → last e-mail)',
    'end to end (received → last e-mail)',
  ];
  const out: TrialReport['stageLatency'] = {};
  for (const stage of order) {
    const row = result.rows.find((r) => r.stage === stage);
    if (row) out[stage] = { p50: row.p50, p95: row.p95, p99: row.p99, max: row.max };
  }
  return out;
}

async function waitUntil(
  done: () => boolean,
  timeoutMs: number,
  what: () => string,
  output: LogCollector,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}\n${output.tail(3_000)}`);
    await sleep(100);
  }
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
