import { settleFineTune } from '@tuneline/billing';
import { type Db, getEvaluationRunByFineTune, listEvaluationAnswers } from '@tuneline/db';
import { type EvaluatorDeps, evaluateFineTune } from '@tuneline/evaluator';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger } from '@tuneline/ledger';
import { sendNotification, smtpMailer } from '@tuneline/notifier';
import {
  createProviderProfile,
  createProviderSet,
  ProviderNotConfiguredError,
  providerEnvSchema,
} from '@tuneline/provider';
import { RateLimitedError } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { quietLog, type StorageFixture, seedLicense, tempStorage } from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { createTestDatabase, type TestDatabase } from '../support/context.ts';
import { evaluationLedger, mimeParts, unsettledFineTune } from './support.ts';

// The evaluator's limits, in-process against the simulator's base model (it answers any chat): the
// time limit and a refused call end the evaluation and the e-mail says why; a transient error retries
// the one example; a 429 pauses the queue (RateLimitedError) and the job resumes where it stopped.

/** Stands for the fine-tuned model: another model the simulator serves. */
const TUNED = 'gpt-4.1-nano-2025-04-14';
const LICENSE = 'lic-limits';
let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let deps: EvaluatorDeps;

beforeAll(async () => {
  tdb = await createTestDatabase();
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({ port: 0, seed: 1819, speed: 2_000 });
  await seedLicense(tdb.db, LICENSE, 1_000_000n);
  deps = {
    db: tdb.db,
    log: quietLog,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    timeLimitMs: 60_000,
    concurrency: 2,
    callAttempts: 8,
    maxTokens: 512,
  };
});

beforeEach(() => {
  sim.admin.setFaults({ seed: 1 });
});

afterAll(async () => {
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
  await tdb?.drop();
});

/** A fine-tune settled by billing whose "fine-tuned model" is `model`, with a testing file of 8 examples. */
async function settledFineTune(
  db: Db,
  model: string,
  email: string,
  /** Its provider, deployment and base model (default: the deployment default's BASE, not deployed). */
  at: { provider?: string; deployment_name?: string; base_model?: string } = {},
): Promise<string> {
  const id = await unsettledFineTune(db, files.storage, {
    licenseId: LICENSE,
    model,
    reserve: 40n,
    email,
    at,
  });
  // Settled as billing settles: 1,000 trained tokens at 3,000 credits per 1M = 3 credits; the rest held.
  await db.transaction().execute((tx) => settleFineTune(tx, id));
  return id;
}

async function mailOf(fineTuneId: string): Promise<string> {
  const n = await tdb.db
    .selectFrom('notifications')
    .select('id')
    .where('fine_tune_id', '=', fineTuneId)
    .executeTakeFirstOrThrow();
  const mailer = smtpMailer(smtp.url, { timeoutMs: 5_000, maxConnections: 0 });
  await sendNotification({ db: tdb.db, log: quietLog, mailer, mailFrom: 'tuneline@example.com' }, n.id);
  mailer.close();
  const mail = smtp.received.find((m) => m.raw.includes(fineTuneId));
  return mimeParts(mail?.raw ?? '')['text/plain'] ?? '';
}

describe('evaluator limits', () => {
  it('past its time limit the run fails, keeps what it charged, and the e-mail goes without it, saying why', async () => {
    const id = await settledFineTune(tdb.db, TUNED, 'late@example.com');
    sim.admin.setFaults({ seed: 1, latencyMs: 400 });
    const outcome = await evaluateFineTune({ ...deps, timeLimitMs: 1_000, concurrency: 1 }, id, {
      attempt: 1,
      log: quietLog,
    });
    expect(outcome).toBe('failed');
    const run = await getEvaluationRunByFineTune(tdb.db, id);
    expect(run?.status).toBe('failed');
    expect(run?.reason).toMatch(/^the evaluation exceeded its time limit of 1 s \(\d+ of 16 answers\)$/);
    const answers = await listEvaluationAnswers(tdb.db, run?.id ?? '');
    expect(answers.length).toBeLessThan(16);
    // The answers stored are charged (one charge for the run), the rest of the hold released.
    expect((await evaluationLedger(tdb.db, id)).credits).toBe(answers.reduce((s, a) => s + a.credits, 0n));
    const text = await mailOf(id);
    expect(text).toContain('Evaluation not available: the evaluation exceeded its time limit of 1 s');
    expect(text).not.toContain('Verdict against');
    // A second delivery of the message changes nothing.
    expect(await evaluateFineTune(deps, id, { attempt: 2, log: quietLog })).toBe('already_done');
    expect((await auditLedger(tdb.db)).violations).toEqual([]);
  });

  it('a refused call (unknown model) ends the run failed with the provider reason', async () => {
    const id = await settledFineTune(tdb.db, 'ft:gpt-4o-mini-2024-07-18:nobody:gone:xyz', 'gone@example.com');
    expect(await evaluateFineTune(deps, id, { attempt: 1, log: quietLog })).toBe('failed');
    const run = await getEvaluationRunByFineTune(tdb.db, id);
    expect(run?.reason).toMatch(
      /^the provider refused an evaluation call: provider rejected the request \(404\)/,
    );
    expect(await mailOf(id)).toContain('Evaluation not available: the provider refused an evaluation call');
  });

  it('retries the one example on 500s, pauses on a 429 and resumes without re-asking', async () => {
    const id = await settledFineTune(tdb.db, TUNED, 'retry@example.com');
    // SDK retries off: every 500 reaches the per-example retry, every 429 the stage.
    const noSdkRetries = {
      ...deps,
      provider: createProviderProfile({
        kind: 'simulator',
        apiKey: sim.apiKey,
        baseURL: sim.url,
        common: { webhookSecret: undefined, maxRetries: 0, timeoutMs: 10_000 },
      }),
    };
    sim.admin.setFaults({ seed: 9, rate500: 0.3, rate429: 0.25, retryAfterSeconds: 0.05 });
    let pauses = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        expect(await evaluateFineTune(noSdkRetries, id, { attempt: 1, log: quietLog })).toBe('evaluated');
        break;
      } catch (err) {
        expect(err).toBeInstanceOf(RateLimitedError);
        pauses++;
        if (attempt > 50) throw err;
      }
    }
    expect(pauses).toBeGreaterThan(0);
    const faults = sim.admin.state().faultLog.filter((f) => f.path.includes('chat'));
    expect(faults.some((f) => f.fault === '500')).toBe(true);
    // Every call the provider answered became a stored answer: nothing was asked twice across the pauses.
    expect(faults.filter((f) => f.fault === 'none')).toHaveLength(16);
    const run = await getEvaluationRunByFineTune(tdb.db, id);
    expect(run?.status).toBe('succeeded');
    const answers = await listEvaluationAnswers(tdb.db, run?.id ?? '');
    expect(answers).toHaveLength(16);
    const ledger = await evaluationLedger(tdb.db, id);
    expect(ledger.count).toBe(1);
    expect(ledger.credits).toBe(answers.reduce((s, a) => s + a.credits, 0n));
    expect((await auditLedger(tdb.db)).violations).toEqual([]);
  });
});

describe("each model at its fine-tune's own provider (one simulator, three dialects)", () => {
  const TOGETHER = 'Qwen/Qwen2.5-7B-Instruct';
  const withProviders = (): EvaluatorDeps => {
    const providers = createProviderSet(
      providerEnvSchema.parse({ SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
    );
    return { ...deps, provider: providers.defaultProfile, providers };
  };
  /** The simulator's chat requests for `model` (by name or deployment) after sequence number `since`. */
  const lastSeq = () => sim.admin.chatRequests().at(-1)?.seq ?? -1;
  const chatsOf = (model: string, since = -1) =>
    sim.admin
      .chatRequests()
      .filter((r) => r.seq > since && (r.model === model || r.url.includes(`/deployments/${model}/`)))
      .map((r) => `${r.dialect} ${r.url.split('?')[0]}`);

  it('a Together fine-tune is evaluated at Together (the default is openai)', async () => {
    const id = await settledFineTune(tdb.db, TOGETHER, 'together@example.com', {
      provider: 'together',
      base_model: TOGETHER,
    });
    expect(await evaluateFineTune(withProviders(), id, { attempt: 1, log: quietLog })).toBe('evaluated');
    const run = await getEvaluationRunByFineTune(tdb.db, id);
    expect(run?.status).toBe('succeeded');
    // 8 examples, the fine-tuned and the base model (the same name here): 16 calls, all at Together.
    expect(new Set(chatsOf(TOGETHER))).toEqual(new Set(['together /together/v1/chat/completions']));
    expect(chatsOf(TOGETHER)).toHaveLength(16);
    // With the deployment default alone (before issue 20.4's routing) the same model is a 404.
    const alone = await settledFineTune(tdb.db, TOGETHER, 'alone@example.com', {
      provider: 'together',
      base_model: TOGETHER,
    });
    expect(await evaluateFineTune(deps, alone, { attempt: 1, log: quietLog })).toBe('failed');
  });

  it('an Azure fine-tune is called by its deployment name; an undeployed one fails saying so', async () => {
    // The deployment's name is a model the simulator serves, the model's own name one it does not:
    // only a call by the deployment's name can answer.
    const since = lastSeq();
    const deployed = await settledFineTune(tdb.db, 'ft:gpt-4.1-nano:azure:x', 'deployed@example.com', {
      provider: 'azure',
      deployment_name: TUNED,
    });
    expect(await evaluateFineTune(withProviders(), deployed, { attempt: 1, log: quietLog })).toBe(
      'evaluated',
    );
    expect(new Set(chatsOf(TUNED, since))).toEqual(
      new Set([`azure /openai/deployments/${TUNED}/chat/completions`]),
    );
    const undeployed = await settledFineTune(tdb.db, 'ft:gpt-4o-mini:azure:gone', 'undeployed@example.com', {
      provider: 'azure',
    });
    expect(await evaluateFineTune(withProviders(), undeployed, { attempt: 1, log: quietLog })).toBe('failed');
    const run = await getEvaluationRunByFineTune(tdb.db, undeployed);
    expect(run?.reason).toMatch(
      /^the provider refused an evaluation call: Azure model "ft:gpt-4o-mini:azure:gone" is not deployed \(Azure serves a model only through a deployment; activating it deploys it\)/,
    );
  });

  it('a fine-tune whose provider is not configured fails at once, naming it', async () => {
    const full = withProviders();
    const noTogether: EvaluatorDeps = {
      ...full,
      providers: {
        for: (p) => {
          if (p === 'together') throw new ProviderNotConfiguredError('together');
          return full.provider;
        },
      },
    };
    const id = await settledFineTune(tdb.db, TOGETHER, 'nowhere@example.com', {
      provider: 'together',
      base_model: TOGETHER,
    });
    expect(await evaluateFineTune(noTogether, id, { attempt: 1, log: quietLog })).toBe('failed');
    const run = await getEvaluationRunByFineTune(tdb.db, id);
    expect(run?.reason).toBe(
      'provider "together" is not configured in this deployment (set TOGETHER_API_KEY)',
    );
    // Nothing asked, nothing charged: the run's one charge (at its end) is 0 and the hold is released.
    expect((await evaluationLedger(tdb.db, id)).credits).toBe(0n);
    expect((await auditLedger(tdb.db)).violations).toEqual([]);
  });
});
