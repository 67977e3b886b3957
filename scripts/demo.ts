// `npm run demo`: the whole pipeline on a fresh clone with nothing configured. Starts Postgres and Redis
// (devstack), the provider simulator with webhooks, the six workers as separate processes; creates a demo
// license with credits; enqueues 60 synthetic invoices with a 20% test split; shows live progress per
// stage; prints the summary. Keeps serving until Ctrl-C; `npm run demo -- --exit` stops after the summary.
// It trains the first (base model, provider) whose training is open today per the catalogue, preferring
// gpt-4o-mini at OpenAI. `--lifecycle` then shows a training close and a migration (demo-lifecycle.ts).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createApiKey, startApi } from '@tuneline/api';
import { FineTuneRequestProducer, processClock, utcDay } from '@tuneline/contracts';
import { lifecycleOf, loadCatalogue, openForTraining, type TrainingChoice } from '@tuneline/dataset';
import { createDb, getEvaluationRunByFineTune, migrateToLatest } from '@tuneline/db';
import {
  DEMO_DATABASE,
  ensureDatabase,
  ensureStack,
  freePort,
  invoiceModelConfig,
  portIsFree,
  readServiceManifests,
  StackError,
  superviseServices,
  syntheticInvoices,
} from '@tuneline/devstack';
import { type EvaluationSummary, formatEvaluationTable } from '@tuneline/evaluation';
import { ensureLicenseAccount, getBalance, grantCredits } from '@tuneline/ledger';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { mails, runLifecycleDemo, writeLifecycleCatalogue } from './demo-lifecycle.ts';

const root = join(import.meta.dirname, '..');
const exitAfterSummary = process.argv.includes('--exit');
const lifecycle = process.argv.includes('--lifecycle');
const say = (line = '') => process.stdout.write(`${line}\n`);
const started = Date.now();
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
const fmt = (n: bigint | number | string | null | undefined) =>
  n === null || n === undefined ? '—' : BigInt(n).toLocaleString('en-US');

const realProvider = Boolean(
  process.env.OPENAI_API_KEY || (process.env.AZURE_OPENAI_ENDPOINT && process.env.AZURE_OPENAI_API_KEY),
);
if (realProvider) {
  say(
    'Real provider credentials found in the environment: this demo will upload files and train at the provider, and that costs money.',
  );
}

if (realProvider && lifecycle) {
  process.stderr.write(
    'tuneline demo: --lifecycle trains twice and moves clocks: it runs on the simulator only\n',
  );
  process.exit(2);
}

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
// A DATABASE_URL the user gave is used as is; otherwise the demo keeps its data in its own database.
const databaseUrl = process.env.DATABASE_URL
  ? stack.databaseUrl
  : await ensureDatabase(stack.databaseUrl, DEMO_DATABASE);
const db = createDb(databaseUrl, { max: 4, applicationName: 'tuneline-demo' });
await migrateToLatest(db);

const runId = `${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}-${randomBytes(2).toString('hex')}`;
const stateDir = join(root, '.tuneline', 'demo');
const storageDir = join(stateDir, 'storage');
const mailDir = join(stateDir, 'mail');
const webhookPort = await freePort();
const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;

let simulator: RunningSimulator | undefined;
if (!realProvider) {
  // 600×: a job the simulator says takes ~20 minutes finishes in about 2 seconds.
  simulator = await startSimulator({
    port: 0,
    // A fresh seed per run: provider ids must not repeat those of earlier runs kept in the demo database.
    seed: Number.parseInt(randomBytes(4).toString('hex'), 16),
    speed: 600,
    webhookUrl: `http://127.0.0.1:${webhookPort}/webhooks/provider`,
    webhookSecret,
  });
}

// --lifecycle: dates near the demo's clock, in a catalogue override every process reads.
const clockOffsetMs = Number(process.env.TUNELINE_CLOCK_OFFSET_MS ?? 0) || 0;
const lifecycleFile = join(stateDir, `catalogue-${runId}.json`);
let lifecycleDates: ReturnType<typeof writeLifecycleCatalogue> | undefined;
if (lifecycle) {
  mkdirSync(stateDir, { recursive: true });
  lifecycleDates = writeLifecycleCatalogue(lifecycleFile, processClock().now());
}

const env: NodeJS.ProcessEnv = {
  ...process.env,
  ...(lifecycle ? { MODEL_CATALOGUE_FILE: lifecycleFile, LIFECYCLE_SWEEP_INTERVAL_MS: '1000' } : {}),
  DATABASE_URL: databaseUrl,
  REDIS_URL: stack.redisUrl,
  QUEUE_PREFIX: `tuneline-demo-${runId}`,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  STORAGE_DIR: storageDir,
  MAIL_OUTBOX_DIR: mailDir,
  WEBHOOK_PORT: String(webhookPort),
  ...(simulator
    ? {
        PROVIDER: 'simulator',
        SIMULATOR_URL: simulator.url,
        SIMULATOR_API_KEY: simulator.apiKey,
        PROVIDER_WEBHOOK_SECRET: webhookSecret,
      }
    : {}),
};
const startWorkers = (workerEnv: NodeJS.ProcessEnv) =>
  superviseServices({
    root,
    manifests: readServiceManifests(root),
    env: workerEnv,
    basePort: 0,
    onOutput: (service, chunk) => {
      for (const line of chunk.split('\n').filter(Boolean)) process.stderr.write(`[${service}] ${line}\n`);
    },
  });
let supervisor = startWorkers(env);

// The API and hub, in this process (port 8080 unless taken).
const apiPort = Number(process.env.API_PORT ?? 0) || ((await portIsFree(8080)) ? 8080 : await freePort());
let api = await startApi({ ...env, LOG_LEVEL: 'warn' }, apiPort);
const hubUrl = `http://127.0.0.1:${apiPort}/hub`;

/** The workers and the API again, with the one clock moved to `offsetMs` (the lifecycle demo). */
async function restartWithClock(offsetMs: number): Promise<void> {
  const moved = { ...env, TUNELINE_CLOCK_OFFSET_MS: String(offsetMs) };
  await supervisor.stop();
  await api.stop();
  supervisor = startWorkers(moved);
  api = await startApi({ ...moved, LOG_LEVEL: 'warn' }, apiPort);
}

/** What the demo trains: the first (base model, provider) open today per the catalogue (and reachable). */
const DEMO_MODELS = [
  'gpt-4o-mini-2024-07-18',
  'gpt-4.1-mini-2025-04-14',
  'gpt-4.1-nano-2025-04-14',
  'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference',
];
const reachable = (provider: string) =>
  !realProvider ||
  (provider === 'openai' && Boolean(process.env.OPENAI_API_KEY)) ||
  (provider === 'azure' && Boolean(process.env.AZURE_OPENAI_ENDPOINT && process.env.AZURE_OPENAI_API_KEY));
const choice: TrainingChoice | undefined = openForTraining(
  loadCatalogue(env),
  processClock().now(),
  DEMO_MODELS,
).find((c) => reachable(c.provider));

say('Tuneline demo');
for (const note of stack.notes) say(`  ${note}`);
say(
  `  provider: ${simulator ? `simulator at ${simulator.url} (webhooks to :${webhookPort})` : 'real provider from the environment'}`,
);
say(`  api: http://127.0.0.1:${apiPort} (OpenAPI at /openapi.json, docs at /docs, hub at /hub)`);
say(`  workers: ${supervisor.processes.map((p) => `${p.service} (pid ${p.child.pid})`).join(', ')}`);

let producer: FineTuneRequestProducer | undefined;
let producerConnection: ReturnType<typeof createRedis> | undefined;

interface PipelineRun {
  ok: boolean;
  licenseId: string;
  apiKey: string;
  fineTuneId: string | undefined;
}

/** Runs the request through the pipeline and prints the summary; `ok` when a model became available. */
async function runPipeline(training: TrainingChoice): Promise<PipelineRun> {
  // A demo license with credits.
  const licenseId = `demo-${runId}`;
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto('licenses')
      .values({ id: licenseId, name: 'Demo license' })
      .onConflict((c) => c.doNothing())
      .execute();
    await ensureLicenseAccount(tx, licenseId);
    await grantCredits(tx, { grantId: `demo-${runId}`, licenseId, amount: 50_000n, memo: 'demo credits' });
  });
  const apiKey = await createApiKey(db, licenseId);
  say(`  license ${licenseId} with ${fmt(50_000)} credits`);
  const closes = lifecycleOf(training.model, training.provider).trainingClosesAt;
  say(
    `  training ${training.model.name} at ${training.provider} (open on ${utcDay(processClock().now())} per the catalogue; ` +
      `${closes ? `no new jobs from ${closes}` : 'no closing date announced'})`,
  );

  // 60 synthetic invoices, 20% held out for testing.
  const documents = syntheticInvoices({ count: 60, seed: 2026 });
  producerConnection = createRedis(stack.redisUrl, 'worker');
  producer = new FineTuneRequestProducer({ connection: producerConnection, prefix: env.QUEUE_PREFIX! });
  const requestId = `demo-${runId}`;
  const enqueued = await producer.enqueue({
    requestId,
    licenseId,
    documents,
    modelConfig: invoiceModelConfig,
    dump: 'mapped',
    testPercent: 20,
    baseModel: training.model.name,
    // The model's own provider is the deployment default's (as before providers could be named).
    ...(training.provider === training.model.provider ? {} : { provider: training.provider }),
    job: {
      description: 'Demo: synthetic invoices',
      notifyEmails: 'ops@demo.tuneline.test; finance@demo.tuneline.test',
    },
    autoTrain: true,
  });
  if (!enqueued.ok) throw new Error(enqueued.message);
  say(
    `\n${stamp()} request ${requestId} enqueued (${documents.length} documents, correlationId ${enqueued.correlationId})`,
  );

  // Live progress: one line per stage change, read from Postgres (the source of truth).
  const seen = new Set<string>();
  const progress = (key: string, line: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    say(`${stamp()} ${line}`);
  };
  const deadline = Date.now() + 5 * 60_000;
  let finalState: 'available' | 'failed' | 'timeout' = 'timeout';
  for (;;) {
    const request = await db
      .selectFrom('fine_tune_requests')
      .selectAll()
      .where('license_id', '=', licenseId)
      .executeTakeFirst();
    if (request)
      progress(
        `req-${request.status}`,
        `dataset-builder  request ${request.status}${request.error ? `: ${request.error}` : ''}`,
      );
    const dataset = request
      ? await db
          .selectFrom('datasets')
          .selectAll()
          .where('request_row_id', '=', request.id)
          .executeTakeFirst()
      : undefined;
    if (dataset) {
      progress(
        `ds-${dataset.status}`,
        `${dataset.status.startsWith('upload') ? 'uploader       ' : 'dataset-builder'}  dataset ${dataset.status}` +
          (dataset.status === 'ready'
            ? ` (${dataset.train_examples} train / ${dataset.test_examples} test examples)`
            : ''),
      );
      if (dataset.status === 'uploaded')
        progress(
          'files',
          `uploader         files uploaded: ${dataset.train_file_id}, ${dataset.test_file_id ?? 'no test file'}`,
        );
    }
    const fineTune = dataset
      ? await db.selectFrom('fine_tunes').selectAll().where('dataset_id', '=', dataset.id).executeTakeFirst()
      : undefined;
    if (fineTune) {
      const stage = ['pending', 'creating'].includes(fineTune.status) ? 'trainer        ' : 'poller         ';
      progress(
        `ft-${fineTune.status}`,
        `${stage}  fine-tune ${fineTune.status}${fineTune.provider_job_id ? ` (${fineTune.provider_job_id})` : ''}`,
      );
      const evaluation = fineTune.settled_at ? await getEvaluationRunByFineTune(db, fineTune.id) : undefined;
      if (evaluation)
        progress(
          `eval-${evaluation.status}`,
          `evaluator        evaluation ${evaluation.status}${evaluation.reason ? `: ${evaluation.reason}` : ''}`,
        );
      if (fineTune.settled_at)
        progress(
          'settled',
          `billing          settled: ${fmt(fineTune.credits_charged)} credits charged${fineTune.available ? ', model available' : ''}`,
        );
    }
    const sent = fineTune
      ? await db
          .selectFrom('notifications')
          .select(['status'])
          .where('fine_tune_id', '=', fineTune.id)
          .execute()
      : [];
    if (sent.length && sent.every((n) => n.status !== 'pending')) {
      progress(
        'mail',
        `notifier         ${sent.filter((n) => n.status === 'sent').length}/${sent.length} e-mails written`,
      );
    }
    const done = fineTune?.settled_at && sent.length > 0 && sent.every((n) => n.status !== 'pending');
    if (done) {
      finalState = fineTune.available ? 'available' : 'failed';
      break;
    }
    if (request?.status === 'rejected' || dataset?.status === 'invalid') {
      finalState = 'failed';
      break;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 300));
  }

  // Summary.
  const dataset = await db
    .selectFrom('datasets')
    .innerJoin('fine_tune_requests', 'fine_tune_requests.id', 'datasets.request_row_id')
    .selectAll('datasets')
    .where('fine_tune_requests.license_id', '=', licenseId)
    .executeTakeFirst();
  const fineTune = dataset
    ? await db.selectFrom('fine_tunes').selectAll().where('dataset_id', '=', dataset.id).executeTakeFirst()
    : undefined;
  say('\nSummary');
  if (dataset) {
    say(
      `  dataset ${dataset.short_hash ?? dataset.id}: ${dataset.train_examples} train / ${dataset.test_examples} test examples, ` +
        `${fmt(dataset.train_tokens)} training tokens, ${dataset.epochs ?? '—'} epochs, ` +
        `~${fmt(dataset.estimated_billed_tokens)} billed tokens, ~${fmt(dataset.estimated_credits)} credits estimated`,
    );
    const warnings = dataset.warnings as unknown[];
    if (warnings.length)
      say(`  warnings: ${warnings.map((w) => (typeof w === 'string' ? w : JSON.stringify(w))).join('; ')}`);
  }
  if (fineTune) {
    say(
      `  fine-tune ${fineTune.id}: ${fineTune.status}${fineTune.error_message ? ` (${fineTune.error_message})` : ''}`,
    );
    say(`  model: ${fineTune.fine_tuned_model ?? '—'}${fineTune.available ? ' (available)' : ''}`);
    say(
      `  trained tokens: ${fmt(fineTune.trained_tokens)}; price ${fmt(fineTune.credits_per_million_tokens)} credits / 1M tokens`,
    );
    say(`  credits reserved ${fmt(fineTune.credits_reserved)}, charged ${fmt(fineTune.credits_charged)}`);
  }
  const balance = await getBalance(db, licenseId);
  say(
    `  credits remaining: ${fmt(balance.available)} available (${fmt(balance.posted)} posted, ${fmt(balance.pending)} pending)`,
  );
  // The fine-tune's outcome e-mails (the lifecycle sweep may have written warnings beside them).
  const outcome = fineTune ? mails(mailDir).filter((m) => m.raw.includes(fineTune.id)) : [];
  say(
    outcome.length
      ? `  e-mail: ${outcome[0]?.path}${outcome.length > 1 ? ` (+${outcome.length - 1} more)` : ''}`
      : '  e-mail: — (none written)',
  );

  say(`  hub: ${hubUrl}  (sign in with the license key ${apiKey.key})`);

  // The held-out evaluation the evaluator ran before the e-mail: the per-field table and the verdicts.
  if (fineTune) say(await evaluationSummaryText(fineTune.id));
  if (finalState !== 'available') say(`\nThe pipeline did not reach an available model (${finalState}).`);
  return { ok: finalState === 'available', licenseId, apiKey: apiKey.key, fineTuneId: fineTune?.id };
}

/** The evaluation of the testing file as the summary prints it (the e-mail's table). */
async function evaluationSummaryText(fineTuneId: string): Promise<string> {
  const run = await getEvaluationRunByFineTune(db, fineTuneId);
  if (!run) return '  evaluation: none (no testing file, or evaluation turned off)';
  if (run.status !== 'succeeded') return `  evaluation: ${run.status}${run.reason ? ` (${run.reason})` : ''}`;
  const table = formatEvaluationTable(run.summary as EvaluationSummary);
  return `  evaluation on the testing file (accuracy per field, 95% Wilson interval):\n${table
    .split('\n')
    .map((line) => (line ? `    ${line}` : ''))
    .join('\n')}`;
}

const shutdown = async (code: number) => {
  await producer?.close();
  producerConnection?.disconnect();
  await supervisor.stop();
  await api.stop();
  await simulator?.close();
  await db.destroy();
  await stack.stop();
  process.exit(code);
};
let ok = false;
try {
  if (!choice)
    throw new Error(
      'no base model in the catalogue takes new fine-tuning jobs today at a reachable provider',
    );
  const run = await runPipeline(choice);
  ok = run.ok;
  if (ok && lifecycle && lifecycleDates && run.fineTuneId)
    ok = await runLifecycleDemo({
      db,
      licenseId: run.licenseId,
      say,
      stamp,
      apiUrl: () => `http://127.0.0.1:${apiPort}`,
      licenseKey: run.apiKey,
      fineTuneId: run.fineTuneId,
      mailDir,
      dates: lifecycleDates,
      baseOffsetMs: clockOffsetMs,
      restart: restartWithClock,
    });
} catch (err) {
  process.stderr.write(`tuneline demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await shutdown(1);
}
if (exitAfterSummary) await shutdown(ok ? 0 : 1);
else {
  say('\nRunning. Press Ctrl-C to stop.');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown(0));
}
