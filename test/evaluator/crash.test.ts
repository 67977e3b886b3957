import { join } from 'node:path';
import { billingStage } from '@tuneline/billing';
import { fineTuneRequestMessage } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { getEvaluationRunByFineTune, listEvaluationAnswers } from '@tuneline/db';
import { readServiceManifests, type Supervisor, superviseServices } from '@tuneline/devstack';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger, usageLog } from '@tuneline/ledger';
import { notifierStage, smtpMailer } from '@tuneline/notifier';
import { type RecordedResponse, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { demoSplit } from '../evaluation/invoice-examples.ts';
import {
  availableFineTune,
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  startPipeline,
  tempStorage,
} from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { evaluationLedger, invoiceRequest, mimeParts } from './support.ts';

// The evaluator runs as its own process (its compiled bundle, as in production) and is killed with
// SIGKILL part-way through an evaluation while the provider is slow and answers some calls 500 and 429.

const root = join(import.meta.dirname, '..', '..');
const CONCURRENCY = 2;
let prefix: string;

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let supervisor: Supervisor | undefined;
const chat: { status: number; at: number }[] = [];

test.beforeAll(async ({ database, prefix: ownPrefix }) => {
  tdb = database;
  prefix = ownPrefix;
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({
    port: 0,
    seed: 1818,
    speed: 2_000,
    onResponse: (r: RecordedResponse) => {
      if (r.method === 'POST' && r.url.includes('/chat/completions'))
        chat.push({ status: r.status, at: Date.now() });
    },
  });
  const provider = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey });
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix,
    provider,
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await pipeline.runner.start(datasetBuilderStage, {
    db: tdb.db,
    log: quietLog,
    storage: files.storage,
    catalogue: loadCatalogue({}),
  });
  await pipeline.runner.start(billingStage, { db: tdb.db, log: quietLog });
  await pipeline.runner.start(notifierStage, {
    db: tdb.db,
    log: quietLog,
    mailer: smtpMailer(smtp.url, { timeoutMs: 5_000 }),
    mailFrom: 'tuneline@example.com',
  });
  supervisor = superviseServices({
    root,
    manifests: readServiceManifests(root).filter((m) => m.service === 'evaluator'),
    env: {
      ...process.env,
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      STORAGE_DIR: files.dir,
      PROVIDER: 'simulator',
      SIMULATOR_URL: sim.url,
      SIMULATOR_API_KEY: sim.apiKey,
      // Our own retries only: a 500 reaches the per-example retry, a 429 the queue's pause.
      PROVIDER_MAX_RETRIES: '0',
      EVALUATION_CONCURRENCY: String(CONCURRENCY),
      EVALUATION_CALL_ATTEMPTS: '8',
      JOB_LOCK_MS: '1000',
      RECOVERY_INTERVAL_MS: '1000',
      OUTBOX_INTERVAL_MS: '100',
    },
    basePort: 0,
    restart: true,
    onOutput: () => {},
  });
}, 120_000);

afterAll(async () => {
  await supervisor?.stop(10_000);
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

describe('an evaluator killed part-way', () => {
  it('resumes without re-asking stored examples and charges each exactly once', async () => {
    await seedLicense(tdb.db, 'lic-crash', 1_000_000n);
    const input = invoiceRequest({
      requestId: 'crash-1',
      licenseId: 'lic-crash',
      job: { description: 'crash', notifyEmails: 'crash@example.com', hyperparameters: { n_epochs: 3 } },
    });
    const request = fineTuneRequestMessage({ request: input, correlationId: 'corr-crash-1' });
    await pipeline.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);

    const ft = await availableFineTune(tdb.db, 'lic-crash', 90_000, 'the fine-tune to settle');
    // Training is over: from now on the provider is slow and sometimes fails, for the evaluation only.
    sim.admin.setFaults({ latencyMs: 250, rate500: 0.12, rate429: 0.04, retryAfterSeconds: 0.2, seed: 5 });
    const run = await waitFor(() => getEvaluationRunByFineTune(tdb.db, ft.id), 30_000, 'the run');
    const total = demoSplit().test.length * 2;

    const before = await waitFor(
      async () => {
        const answers = await listEvaluationAnswers(tdb.db, run.id);
        return answers.length >= 14 ? answers : undefined;
      },
      90_000,
      'answers part-way',
    );
    supervisor?.kill('evaluator');
    const killedAt = Date.now();
    const storedAtKill = (await listEvaluationAnswers(tdb.db, run.id)).length;
    expect(storedAtKill).toBeLessThan(total);
    expect(before.length).toBeGreaterThanOrEqual(14);

    const mail = await waitFor(
      async () => smtp.received.find((m) => m.to.includes('crash@example.com')),
      120_000,
      'the e-mail after the resumed evaluation',
    );
    expect(supervisor?.exits.some((e) => e.service === 'evaluator' && e.signal === 'SIGKILL')).toBe(true);

    const done = await getEvaluationRunByFineTune(tdb.db, ft.id);
    expect(done?.status).toBe('succeeded');
    const answers = await listEvaluationAnswers(tdb.db, run.id);
    expect(answers).toHaveLength(total);
    const testIds = demoSplit().test.map((e) => e.id);
    for (const role of ['fine_tuned', 'base'] as const) {
      expect(answers.filter((a) => a.role === role).map((a) => a.exampleId)).toEqual(testIds);
    }

    // Not re-asked: every successful chat call became a stored answer, but for those lost with the
    // process: calls in flight (EVALUATION_CONCURRENCY) and answers not yet written (at most four times
    // that). Re-asking the ones stored before the kill would add >= 14.
    const ok = chat.filter((c) => c.status === 200);
    expect(ok.length - answers.length).toBeGreaterThanOrEqual(0);
    expect(ok.length - answers.length).toBeLessThanOrEqual(5 * CONCURRENCY);
    expect(chat.some((c) => c.at > killedAt && c.status === 200)).toBe(true);
    // The faults were met: transient 500s retried per example, 429s paused the queue.
    expect(chat.some((c) => c.status === 500)).toBe(true);
    expect(chat.some((c) => c.status === 429)).toBe(true);

    // Charged exactly once per answer, in the run's one charge: the sum of the reported usage.
    const ledger = await evaluationLedger(tdb.db, ft.id);
    expect(ledger.count).toBe(1);
    expect(ledger.ids).toEqual(new Set([`evaluation-${ft.id}`]));
    expect(ledger.credits).toBe(answers.reduce((s, a) => s + a.credits, 0n));
    expect(ledger.tokens).toBe(BigInt(answers.reduce((s, a) => s + a.promptTokens + a.completionTokens, 0)));
    const usage = (await usageLog(tdb.db, 'lic-crash')).filter((e) => e.kind === 'evaluation');
    expect(usage.reduce((s, e) => s + e.amount, 0n)).toBe(ledger.credits);
    expect((await auditLedger(tdb.db)).violations).toEqual([]);

    expect(mimeParts(mail.raw)['text/plain']).toContain('Verdict against the base model:');
  }, 300_000);
});
