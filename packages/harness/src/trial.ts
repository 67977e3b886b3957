// A whole-pipeline trial: the seven workers as separate processes, the provider simulator (with faults)
// behind the real SDKs, a loopback SMTP server, a database of its own and a BullMQ prefix of its own.
// It enqueues fine-tune requests as an upstream app would, spread over the three provider profiles
// (openai, azure, together: one simulator speaks all three dialects) and every other one with a testing
// file so that the evaluator runs too, optionally hurts the system while they run (SIGKILL workers,
// SIGTERM them, flush Redis, terminate Postgres backends), waits until every request is terminal, then
// counts what exactly-once promises, overall and per provider: one provider job per fine-tune (in its
// provider's dialect), one charge per succeeded fine-tune, one e-mail per recipient per fine-tune, a
// clean ledger audit. The harm is in chaos.ts, the CPU accounting in cpu.ts, reading the workers' logs
// in logs.ts, the spread over the providers in providers.ts, the counting and the report in report.ts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FineTuneRequestInput, FineTuneRequestProducer } from '@tuneline/contracts';
import { createDb, migrateToLatest, setLicenseProvider } from '@tuneline/db';
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
import { ensureLicenseAccount, grantCredits } from '@tuneline/ledger';
import { type FaultConfigInput, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { type ChaosPlan, deleteQueueKeys, startChaos } from './chaos.ts';
import { cpuSince, RIG_CPU, serverCpuSeconds, workerCpuSeconds } from './cpu.ts';
import { LogCollector } from './logs.ts';
import {
  JobDialects,
  planProviders,
  providerEnv,
  requestTarget,
  TRIAL_PROVIDERS,
  type TrialProvider,
} from './providers.ts';
import {
  collectReport,
  pipelineState,
  SERVICES,
  scrapeStageMetrics,
  type TrialEvent,
  type TrialReport,
} from './report.ts';
import { type SmtpTestServer, startSmtpServer } from './smtp.ts';

export interface TrialOptions {
  /** Repository root (where services/ lives). */
  root: string;
  /** A Postgres server URL: the trial creates (and drops) a database of its own on it. */
  serverDatabaseUrl: string;
  redisUrl: string;
  requests: number;
  /** Documents per request (at least 10; a request with a testing file gets 2 more). */
  documents?: number;
  /** Licenses the requests are spread over (default 6; at least one per provider). */
  licenses?: number;
  /** Providers the requests are spread over, round-robin (default openai, azure, together). */
  providers?: readonly TrialProvider[];
  /** Every n-th request has a testing file, so its fine-tune is evaluated (default 2; 0: none). */
  evaluateEvery?: number;
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
    // Every worker the repository has is counted and harmed: a new service must join SERVICES.
    const services = readServiceManifests(opts.root).map((m) => m.service);
    if (services.slice().sort().join() !== [...SERVICES].sort().join())
      throw new Error(`the trial counts ${SERVICES.join(', ')} but services/ has ${services.join(', ')}`);
    smtp = await startSmtpServer();
    const webhookPort = await freePort();
    const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
    const dialects = new JobDialects();
    sim = await startSimulator({
      port: 0,
      seed,
      speed: opts.speed ?? 5_000,
      webhookUrl: `http://127.0.0.1:${webhookPort}/webhooks/provider`,
      webhookSecret,
      faults: opts.faults ?? {},
      onResponse: dialects.record,
    });

    const licenses = Array.from({ length: opts.licenses ?? 6 }, (_, i) => `trial-${tag}-lic-${i}`);
    const plan = planProviders(licenses, opts.providers ?? TRIAL_PROVIDERS);
    for (const licenseId of licenses) {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('licenses').values({ id: licenseId, name: licenseId }).execute();
        await ensureLicenseAccount(tx, licenseId);
        await grantCredits(tx, { grantId: `trial-${licenseId}`, licenseId, amount: 100_000_000n });
      });
    }
    for (const { licenseId, provider } of plan.licenseProviders)
      await setLicenseProvider(db, licenseId, provider);

    supervisor = superviseServices({
      root: opts.root,
      manifests: readServiceManifests(opts.root),
      env: {
        ...process.env,
        TUNELINE_CLOCK_OFFSET_MS: process.env.TUNELINE_CLOCK_OFFSET_MS ?? trialClockOffset(),
        DATABASE_URL: databaseUrl,
        REDIS_URL: opts.redisUrl,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'info',
        STORAGE_DIR: storageDir,
        ...providerEnv(sim),
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
    const evaluateEvery = opts.evaluateEvery ?? 2;
    const planned = new Map<string, string>();
    const inputs = Array.from({ length: opts.requests }, (_, i) => {
      const target = requestTarget(plan, i);
      const input = requestFor(
        i,
        target,
        seed,
        opts.documents ?? 12,
        evaluateEvery > 0 && i % evaluateEvery === 0,
      );
      planned.set(input.requestId, target.provider);
      return input;
    });
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

    // Requests re-sent, and how many sends that took (one per pass until Postgres has the request).
    const resubmitted = new Set<string>();
    let resends = 0;
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
        if (result.ok && !result.duplicate) {
          resubmitted.add(input.requestId);
          resends++;
        }
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
          `[${((Date.now() - t0) / 1000).toFixed(1)}s] stored ${state.stored} · datasets ready ${state.datasets} · fine-tunes ${state.fineTunes} (finished ${state.finished}) · settled ${state.settled} · evaluated ${state.evaluationsDone}/${state.evaluations} · e-mails ${state.mailsDone}/${state.mailsTotal} · terminal ${state.terminalRequests.length}/${opts.requests}`,
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
      resubmitted: resubmitted.size,
      resends,
      terminations: chaos.terminations,
      exits: exitsBeforeStop,
      sigkills: chaos.kills,
      stages,
      cpuSeconds,
      planned,
      dialects,
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

/** Testing examples of a request that is evaluated (its training file keeps `documents` examples). */
const TEST_EXAMPLES = 2;

/**
 * The day the trial's workers live on (unless TUNELINE_CLOCK_OFFSET_MS is given): its base models are
 * fixed, and the catalogue's real dates would refuse some of them after 2027-01-06 (OpenAI's training
 * close). The trial measures the pipeline, not the calendar.
 */
export const TRIAL_DAY = '2026-11-16T12:00:00.000Z';

function trialClockOffset(): string {
  return String(Date.parse(TRIAL_DAY) - Date.now());
}

function requestFor(
  i: number,
  target: ReturnType<typeof requestTarget>,
  seed: number,
  documents: number,
  evaluated: boolean,
): FineTuneRequestInput {
  const requestId = `trial-${String(i).padStart(4, '0')}`;
  // One or two recipients, so per-address delivery is exercised.
  const recipients = i % 2 === 0 ? `ops+${i}@example.com` : `ops+${i}@example.com; finance+${i}@example.org`;
  const count = evaluated ? documents + TEST_EXAMPLES : documents;
  return {
    requestId,
    licenseId: target.licenseId,
    documents: syntheticInvoices({ count, seed: seed + i, idPrefix: `${requestId}-` }),
    modelConfig: invoiceModelConfig,
    dump: 'mapped',
    // The split rounds count × testPercent / 100 to exactly TEST_EXAMPLES.
    testPercent: evaluated ? (TEST_EXAMPLES * 100) / count : 0,
    baseModel: target.baseModel,
    ...(target.requestProvider ? { provider: target.requestProvider } : {}),
    job: { description: `trial request ${i}`, notifyEmails: recipients, hyperparameters: 'auto' },
    autoTrain: true,
  };
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
