import {
  createEvaluationRun,
  type Db,
  findAlias,
  findVersionOfFineTune,
  getFineTune,
  inTransaction,
  pointAlias,
  setFineTuneActive,
  startEvaluationRun,
} from '@tuneline/db';
import { invoiceModelConfig } from '@tuneline/devstack';
import type { EvaluationSummary } from '@tuneline/evaluation';
import { decideVersionPromotion, type EvaluatorDeps, evaluateFineTune } from '@tuneline/evaluator';
import { sendNotification } from '@tuneline/notifier';
import { createLogger } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { demoSplit, type InvoiceExample } from '../evaluation/invoice-examples.ts';
import { saveProfile, seedTrainedVersion } from '../retrain/support.ts';
import { type StorageFixture, tempStorage } from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { it, test } from '../support/fixtures.ts';
import { memoryMailer } from '../support/memory-mailer.ts';
import { trainSimulatorModel } from '../support/simulator-models.ts';

// Champion and challenger (issue 22.4) in the evaluator itself: the decision, the alias move and the
// outcome e-mail commit with the evaluation's end, once, however often (or however concurrently) the
// evaluate job runs, and not at all when the transaction does not commit.

const log = createLogger('test', 'silent');
const ctx = { attempt: 1, log };
const TEST_FILE = 'profiles/invoices/test.jsonl';

type Version = { fineTuneId: string; datasetId: string };

let sim: RunningSimulator;
let files: StorageFixture;
let deps: EvaluatorDeps;
/** A model trained on 12 of the demo's invoices (weak) and one trained on all 48 (strong). */
let weak: string;
let strong: string;

const turns = (examples: InvoiceExample[]) =>
  examples.map((e) => [
    { role: 'system' as const, content: invoiceModelConfig.systemPrompt },
    { role: 'user' as const, content: e.user },
    { role: 'assistant' as const, content: e.assistant },
  ]);

test.beforeAll(async ({ db }) => {
  sim = await startSimulator({ speed: 100_000, seed: 22 });
  files = tempStorage();
  const { training, test: testing } = demoSplit();
  [weak, strong] = await Promise.all([
    trainSimulatorModel(sim, { suffix: 'weak', examples: turns(training.slice(0, 12)) }),
    trainSimulatorModel(sim, { suffix: 'strong', examples: turns(training) }),
  ]);
  await new Promise<void>((resolve, reject) => {
    const out = files.storage.createWriteStream(TEST_FILE);
    out.on('error', reject);
    out.end(
      `${turns(testing)
        .map((messages) => JSON.stringify({ messages }))
        .join('\n')}\n`,
      () => resolve(),
    );
  });
  deps = {
    db,
    log,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    timeLimitMs: 60_000,
    concurrency: 4,
    callAttempts: 3,
    maxTokens: 512,
  };
}, 60_000);

afterAll(async () => {
  await sim?.close();
  files?.cleanup();
});

/** A license with a profile (alias `invoices`, the rule given) and its version 1..n trained on `models`. */
async function setUp(db: Db, licenseId: string, promotion: string, models: string[]) {
  await makeLicense(db, licenseId, 1_000_000n);
  const profile = await saveProfile(db, licenseId, {
    alias: 'invoices',
    policy: { minNewDocuments: 50, minIntervalHours: 0, promotion },
  });
  const versions: Version[] = [];
  for (const [i, model] of models.entries()) {
    const v = await seedTrainedVersion(db, profile, i + 1, { model, testPath: TEST_FILE });
    await createEvaluationRun(db, {
      fineTuneId: v.fineTuneId,
      licenseId,
      correlationId: `c-${i}`,
      maxExamples: 200,
    });
    versions.push(v);
  }
  return { profile, versions };
}

async function policyMoves(db: Db, licenseId: string) {
  return db
    .selectFrom('model_alias_history')
    .select(['from_fine_tune_id', 'to_fine_tune_id', 'actor'])
    .where('license_id', '=', licenseId)
    .where('actor', 'like', 'policy:%')
    .orderBy('id')
    .execute();
}

async function mailsQueued(db: Db, fineTuneId: string) {
  const rows = await db
    .selectFrom('notifications')
    .select(['id'])
    .where('fine_tune_id', '=', fineTuneId)
    .execute();
  const outbox = await db
    .selectFrom('outbox')
    .select('job_id')
    .where('queue', '=', 'notify-send')
    .where('job_id', 'in', rows.length ? rows.map((r) => `notify-send-${r.id}`) : [''])
    .execute();
  return { rows, outbox };
}

describe('promotion in the evaluator', () => {
  it('first version: promoted against the base model; v2 against v1 by the rule; twice = once', async ({
    db,
  }) => {
    const { versions } = await setUp(db, 'lic-promo', 'if-better', [weak, strong]);
    const [v1, v2] = versions as [Version, Version];

    // v1: no alias yet, so no champion; the learned model beats the base model → promoted, alias created.
    expect(await evaluateFineTune(deps, v1.fineTuneId, ctx)).toBe('evaluated');
    expect((await findVersionOfFineTune(db, v1.fineTuneId))?.promotion).toMatchObject({
      decision: 'promoted',
      rule: 'if-better',
      actor: 'policy:invoices',
      alias: 'invoices',
      championFineTuneId: null,
    });
    expect((await getFineTune(db, v1.fineTuneId))?.active).toBe(true);
    expect((await findAlias(db, 'lic-promo', 'invoices'))?.fineTuneId).toBe(v1.fineTuneId);

    // v2 is compared with the alias's model (v1) on the same testing documents, and beats it.
    expect(await evaluateFineTune(deps, v2.fineTuneId, ctx)).toBe('evaluated');
    const run = await db
      .selectFrom('evaluation_runs')
      .select(['models', 'champion_fine_tune_id', 'summary'])
      .where('fine_tune_id', '=', v2.fineTuneId)
      .executeTakeFirstOrThrow();
    expect(run.champion_fine_tune_id).toBe(v1.fineTuneId);
    expect((run.models as { champion: string }).champion).toBe(weak);
    const vsChampion = (run.summary as EvaluationSummary).report.comparisons.find(
      (c) => c.comparison === weak,
    );
    expect(vsChampion?.verdict).toBe('better');
    const decided = (await findVersionOfFineTune(db, v2.fineTuneId))?.promotion;
    expect(decided).toMatchObject({ decision: 'promoted', championFineTuneId: v1.fineTuneId });
    expect(decided?.reason).toMatch(
      /^promoted \(if-better: significantly better than the champion\): better at n = 72/,
    );
    expect((await findAlias(db, 'lic-promo', 'invoices'))?.fineTuneId).toBe(v2.fineTuneId);
    // The champion stays active, so the alias can be rolled back.
    expect((await getFineTune(db, v1.fineTuneId))?.active).toBe(true);

    // The evaluate job again (a redelivery, a crash after the commit): nothing moves or is queued twice.
    const mailsBefore = await mailsQueued(db, v2.fineTuneId);
    expect(mailsBefore.rows).toHaveLength(1);
    expect(mailsBefore.outbox).toHaveLength(1);
    expect(await evaluateFineTune(deps, v2.fineTuneId, ctx)).toBe('already_done');
    expect(await policyMoves(db, 'lic-promo')).toEqual([
      { from_fine_tune_id: null, to_fine_tune_id: v1.fineTuneId, actor: 'policy:invoices' },
      { from_fine_tune_id: v1.fineTuneId, to_fine_tune_id: v2.fineTuneId, actor: 'policy:invoices' },
    ]);
    expect((await findVersionOfFineTune(db, v2.fineTuneId))?.promotion).toEqual(decided);
    expect(await mailsQueued(db, v2.fineTuneId)).toEqual(mailsBefore);

    // The e-mail explains the decision under the table; sending it twice sends it once.
    const mailer = memoryMailer();
    const notifier = { db, log, mailer, mailFrom: 'tuneline@example.com' };
    const id = mailsBefore.rows[0]?.id ?? '';
    expect(await sendNotification(notifier, id)).toBe('sent');
    expect(await sendNotification(notifier, id)).toBe('already_done');
    expect(mailer.sent).toHaveLength(1);
    const text = mailer.sent[0]?.text ?? '';
    expect(text).toMatch(/field\s+base\s+champion\s+fine-tuned/);
    expect(text).toContain('The model is active: the API and the gateway serve it.');
    expect(text).toContain('Promotion (training profile "invoices", version 2, rule if-better)');
    expect(text).toContain(`Decision: promoted: the alias "invoices" now serves ${strong} (before: ${weak})`);
    expect(text).toContain('Reason:   promoted (if-better: significantly better than the champion)');
    expect(mailer.sent[0]?.html).toContain('data-promotion="promoted"');
  }, 60_000);

  it('keeps the champion when the rule does not hold, and says so', async ({ db }) => {
    const { versions } = await setUp(db, 'lic-keep', 'if-better', [strong, weak]);
    const [v1, v2] = versions as [Version, Version];
    await evaluateFineTune(deps, v1.fineTuneId, ctx);
    expect(await evaluateFineTune(deps, v2.fineTuneId, ctx)).toBe('evaluated');
    const kept = (await findVersionOfFineTune(db, v2.fineTuneId))?.promotion;
    expect(kept).toMatchObject({ decision: 'kept', alias: null, championFineTuneId: v1.fineTuneId });
    expect(kept?.reason).toMatch(
      /^not promoted \(if-better: significantly better than the champion\): worse at n = 72/,
    );
    expect((await findAlias(db, 'lic-keep', 'invoices'))?.fineTuneId).toBe(v1.fineTuneId);
    expect((await getFineTune(db, v2.fineTuneId))?.active).toBe(false);
    const mailer = memoryMailer();
    const [row] = (await mailsQueued(db, v2.fineTuneId)).rows;
    await sendNotification({ db, log, mailer, mailFrom: 'tuneline@example.com' }, row?.id ?? '');
    expect(mailer.sent[0]?.text).toContain(
      `Decision: kept the champion: the alias "invoices" still serves ${strong}`,
    );
    expect(mailer.sent[0]?.text).toContain('The model is available: activate it from the hub to use it.');
  }, 60_000);

  it('manual: evaluated, nothing moves, the e-mail says how to promote', async ({ db }) => {
    const { versions } = await setUp(db, 'lic-manual', 'manual', [strong]);
    const [v1] = versions as [Version];
    expect(await evaluateFineTune(deps, v1.fineTuneId, ctx)).toBe('evaluated');
    expect((await findVersionOfFineTune(db, v1.fineTuneId))?.promotion?.decision).toBe('manual');
    expect(await findAlias(db, 'lic-manual', 'invoices')).toBeUndefined();
    const mailer = memoryMailer();
    const [row] = (await mailsQueued(db, v1.fineTuneId)).rows;
    await sendNotification({ db, log, mailer, mailFrom: 'tuneline@example.com' }, row?.id ?? '');
    expect(mailer.sent[0]?.text).toContain(
      "Decision: waiting for you: promote it with POST /v1/training-profiles/invoices/versions/1/promote or the hub's Promote button",
    );
  }, 60_000);

  it('two evaluate jobs at once decide and move once; a decision rolled back moves nothing', async ({
    db,
  }) => {
    const { profile, versions } = await setUp(db, 'lic-race', 'if-not-worse', [weak, strong]);
    const [v1, v2] = versions as [Version, Version];
    await Promise.all([
      evaluateFineTune(deps, v1.fineTuneId, ctx),
      evaluateFineTune(deps, v1.fineTuneId, ctx),
    ]);
    expect(await policyMoves(db, 'lic-race')).toHaveLength(1);

    // A crash before the commit: a decision to promote (judged here on v1's own summary) moved the
    // alias inside the transaction; the rollback undoes the move, the activation and the record.
    const v1Run = await db
      .selectFrom('evaluation_runs')
      .select('summary')
      .where('fine_tune_id', '=', v1.fineTuneId)
      .executeTakeFirstOrThrow();
    const crash = new Error('crash before the commit');
    await expect(
      inTransaction(db, async (tx) => {
        const decided = await decideVersionPromotion(
          tx,
          { id: v2.fineTuneId, licenseId: 'lic-race' },
          v1.fineTuneId,
          { status: 'succeeded', summary: v1Run.summary as EvaluationSummary },
        );
        expect(decided?.decision).toBe('promoted');
        expect((await findAlias(tx, 'lic-race', 'invoices'))?.fineTuneId).toBe(v2.fineTuneId);
        throw crash;
      }),
    ).rejects.toBe(crash);
    expect((await findVersionOfFineTune(db, v2.fineTuneId))?.promotion).toBeNull();
    expect((await findAlias(db, 'lic-race', 'invoices'))?.fineTuneId).toBe(v1.fineTuneId);
    expect((await getFineTune(db, v2.fineTuneId))?.active).toBe(false);

    // The evaluation starts with v1 as its champion; before it ends, the license points the alias by
    // hand at another model: the policy leaves the alias there.
    await startEvaluationRun(db, v2.fineTuneId, {
      models: { fine_tuned: strong, base: 'gpt-4o-mini-2024-07-18', champion: weak },
      championFineTuneId: v1.fineTuneId,
      examplesTotal: 12,
      exampleIds: Array.from({ length: 12 }, (_, i) => `line-${i + 1}`),
      deadlineAt: new Date(Date.now() + 60_000),
    });
    const other = await seedTrainedVersion(db, profile, 3, { model: weak, testPath: TEST_FILE });
    await setFineTuneActive(db, { id: other.fineTuneId, licenseId: 'lic-race', active: true });
    await pointAlias(db, {
      licenseId: 'lic-race',
      name: 'invoices',
      fineTuneId: other.fineTuneId,
      actor: 'key:tl_test',
    });
    await Promise.all([
      evaluateFineTune(deps, v2.fineTuneId, ctx),
      evaluateFineTune(deps, v2.fineTuneId, ctx),
    ]);
    const decided = (await findVersionOfFineTune(db, v2.fineTuneId))?.promotion;
    expect(decided?.decision).toBe('kept');
    expect(decided?.reason).toContain(
      `not promoted: the alias "invoices" was switched to fine-tune ${other.fineTuneId}`,
    );
    expect((await getFineTune(db, v2.fineTuneId))?.active).toBe(false);
    expect((await findAlias(db, 'lic-race', 'invoices'))?.fineTuneId).toBe(other.fineTuneId);
    expect(await policyMoves(db, 'lic-race')).toHaveLength(1);
    expect((await mailsQueued(db, v2.fineTuneId)).rows).toHaveLength(1);
  }, 60_000);
});
