import { settleFineTune } from '@tuneline/billing';
import { estimateEvaluation } from '@tuneline/dataset';
import {
  type Db,
  type EvaluationModels,
  getEvaluationRunByFineTune,
  insertEvaluationAnswers,
  listEvaluationAnswers,
} from '@tuneline/db';
import { summariseStoredAnswers } from '@tuneline/evaluation';
import { type EvaluatorDeps, evaluateFineTune } from '@tuneline/evaluator';
import {
  auditLedger,
  creditsForTokens,
  getBalance,
  reservationAmount,
  transferIds,
  usageLog,
} from '@tuneline/ledger';
import type { ProviderProfile } from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { sql } from 'kysely';
import { afterAll, describe, expect } from 'vitest';
import { BASE_MODEL } from '../evaluation/invoice-examples.ts';
import { quietLog, type StorageFixture, seedLicense, tempStorage } from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { it, test } from '../support/fixtures.ts';
import { evaluationLedger, unsettledFineTune } from './support.ts';

// The evaluation's money (issue 18.3): the reservation includes the evaluation estimate, settlement
// charges the training and keeps the rest held, the evaluation's end charges its answers once from that
// hold and releases what is left. Exactly once through repeats, concurrent runs and crashes (a failing
// statement inside the transaction that settles or ends the run), the ledger audit clean throughout.

/** Stands for the fine-tuned model: another model the simulator serves. */
const TUNED = 'gpt-4.1-nano-2025-04-14';
const MARGIN = 10;
const TRAINED = 1000n;
/** 1,000 trained tokens at 3,000 credits per 1M. */
const TRAINING_CHARGE = creditsForTokens(TRAINED, 3000n);

let db: Db;
let sim: RunningSimulator;
let files: StorageFixture;
let deps: EvaluatorDeps;
/** Chat calls the provider answered. */
let calls = 0;

test.beforeAll(async ({ database }) => {
  db = database.db;
  files = tempStorage();
  sim = await startSimulator({ port: 0, seed: 1820, speed: 2_000 });
  const real = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey });
  const provider: Pick<ProviderProfile, 'chatCompletion'> = {
    chatCompletion: async (input) => {
      const result = await real.chatCompletion(input);
      calls++;
      return result;
    },
  };
  deps = {
    db,
    log: quietLog,
    provider,
    storage: files.storage,
    timeLimitMs: 60_000,
    concurrency: 2,
    callAttempts: 4,
    maxTokens: 512,
  };
});

afterAll(async () => {
  await sim?.close();
  files?.cleanup();
});

/** What the trainer reserves: the training estimate (here the actual charge) plus the evaluation's, plus margin. */
function trainerReservation(
  testExamples: number,
  testTokens: number,
): { amount: bigint; evaluation: bigint } {
  const evaluation = estimateEvaluation({
    baseModel: BASE_MODEL,
    testExamples,
    testTokens: BigInt(testTokens),
  }).credits;
  return { amount: reservationAmount(TRAINING_CHARGE + evaluation, MARGIN), evaluation };
}

/** A license of 1,000 credits and its unsettled fine-tune, reserved as the trainer reserves for 8 test examples. */
async function reservedFineTune(
  licenseId: string,
): Promise<{ id: string; reserve: bigint; evaluation: bigint }> {
  await seedLicense(db, licenseId, 1_000n);
  const { amount: reserve, evaluation } = trainerReservation(8, 480);
  const id = await unsettledFineTune(db, files.storage, { licenseId, model: TUNED, reserve });
  return { id, reserve, evaluation };
}

/**
 * The run's answers were charged in one charge for their credits, and nothing of the license's 1,000 is
 * held any more; the used credits.
 */
async function expectChargedOnce(
  fineTuneId: string,
  licenseId: string,
  answers: readonly { credits: bigint }[],
): Promise<bigint> {
  const used = answers.reduce((s, a) => s + a.credits, 0n);
  expect(await evaluationLedger(db, fineTuneId)).toMatchObject({ count: 1, credits: used });
  expect(await getBalance(db, licenseId)).toMatchObject({
    pending: 0n,
    available: 1_000n - TRAINING_CHARGE - used,
  });
  return used;
}

const kindsOf = async (fineTuneId: string) =>
  (
    await db
      .selectFrom('ledger_transfers')
      .select(['kind', 'amount'])
      .where('fine_tune_id', '=', fineTuneId)
      .orderBy('seq')
      .execute()
  ).map((r) => `${r.kind} ${r.amount}`);

const expectCleanLedger = async () => expect((await auditLedger(db)).violations).toEqual([]);

/** The run's summary, made from the answers as this job stored them, is the summary of the stored rows. */
async function expectSummaryOfStoredRows(fineTuneId: string): Promise<void> {
  const run = await getEvaluationRunByFineTune(db, fineTuneId);
  const stored = await listEvaluationAnswers(db, run?.id ?? '');
  const fromRows = summariseStoredAnswers(run?.models as EvaluationModels, stored);
  expect(run?.summary).toEqual(JSON.parse(JSON.stringify(fromRows)));
}

const settle = (fineTuneId: string) => db.transaction().execute((tx) => settleFineTune(tx, fineTuneId));
const evaluate = (fineTuneId: string, over: Partial<EvaluatorDeps> = {}) =>
  evaluateFineTune({ ...deps, ...over }, fineTuneId, { attempt: 1, log: quietLog });

/**
 * Makes the first INSERT of a ledger transfer of `kind` for `fineTuneId` fail, as a crash inside the
 * transaction would: everything that transaction wrote is rolled back. (A sequence, not a table, counts
 * the tries: a sequence is not rolled back with the transaction.)
 */
async function crashOnce(kind: string, fineTuneId: string): Promise<void> {
  const name = `crash_${kind}_${fineTuneId.replaceAll('-', '')}`;
  await sql
    .raw(`
      CREATE SEQUENCE ${name};
      CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('${name}') = 1 THEN RAISE EXCEPTION 'simulated crash writing %', NEW.id; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER ${name} BEFORE INSERT ON ledger_transfers FOR EACH ROW
        WHEN (NEW.kind = '${kind}' AND NEW.fine_tune_id = '${fineTuneId}') EXECUTE FUNCTION ${name}();
    `)
    .execute(db);
}

describe('the evaluation is paid from the reservation', () => {
  it('settlement holds the unused reservation; the evaluation is charged from it once and the rest released', async () => {
    const { id, reserve, evaluation } = await reservedFineTune('lic-money-1');

    const settled = await settle(id);
    expect(settled).toMatchObject({
      settled: true,
      charged: TRAINING_CHARGE,
      released: 0n,
      heldForEvaluation: reserve - TRAINING_CHARGE,
      evaluation: true,
    });
    expect(await settle(id)).toEqual({ settled: false, reason: 'already_settled' });
    // Nothing given back before the evaluation: the license still has the whole reservation out.
    expect(await getBalance(db, 'lic-money-1')).toMatchObject({
      posted: 1_000n - TRAINING_CHARGE,
      pending: reserve - TRAINING_CHARGE,
    });
    expect(await kindsOf(id)).toEqual([
      `reserve ${reserve}`,
      `post ${TRAINING_CHARGE}`,
      `evaluation_hold ${reserve - TRAINING_CHARGE}`,
    ]);
    await expectCleanLedger();

    expect(await evaluate(id)).toBe('evaluated');
    await expectSummaryOfStoredRows(id);
    const run = await getEvaluationRunByFineTune(db, id);
    const answers = await listEvaluationAnswers(db, run?.id ?? '');
    expect(answers).toHaveLength(16);
    const used = answers.reduce((s, a) => s + a.credits, 0n);
    expect(used).toBeGreaterThan(0n);
    // The estimate (3 models) covered the 2 models asked: the charge came out of the hold.
    expect(used).toBeLessThanOrEqual(evaluation);
    const ledger = await evaluationLedger(db, id);
    expect(ledger).toMatchObject({ count: 1, ids: new Set([transferIds.evaluation(id)]), credits: used });
    expect(ledger.tokens).toBe(BigInt(answers.reduce((s, a) => s + a.promptTokens + a.completionTokens, 0)));
    expect(await getBalance(db, 'lic-money-1')).toEqual({
      posted: 1_000n - TRAINING_CHARGE - used,
      pending: 0n,
      available: 1_000n - TRAINING_CHARGE - used,
      overageBlocked: false,
    });
    // The usage log: the reservation, the training charge, the evaluation charge and the release of the rest.
    const log = (await usageLog(db, 'lic-money-1')).filter((e) => e.fineTuneId === id);
    expect(log.map((e) => `${e.kind} ${e.amount}`)).toEqual([
      `reservation ${reserve}`,
      `charge ${TRAINING_CHARGE}`,
      `evaluation ${used}`,
      `release ${reserve - TRAINING_CHARGE - used}`,
    ]);
    expect(log.at(-1)?.available).toBe(1_000n - TRAINING_CHARGE - used);
    await expectCleanLedger();

    // Evaluated again (a redelivered message): nothing asked, nothing charged or released twice.
    const before = calls;
    expect(await evaluate(id)).toBe('already_done');
    expect(calls).toBe(before);
    expect(await kindsOf(id)).toEqual([
      `reserve ${reserve}`,
      `post ${TRAINING_CHARGE}`,
      `evaluation_hold ${reserve - TRAINING_CHARGE}`,
      `evaluation ${used}`,
    ]);
    await expectCleanLedger();
  });

  it('a crash while settling or while ending the run rolls it all back; the rerun charges once without asking again', async () => {
    const { id, reserve } = await reservedFineTune('lic-money-2');

    // Crash in settlement, writing the hold: no post, no hold, not settled, no run.
    await crashOnce('evaluation_hold', id);
    await expect(settle(id)).rejects.toThrow(/simulated crash/);
    expect(await kindsOf(id)).toEqual([`reserve ${reserve}`]);
    expect(await getEvaluationRunByFineTune(db, id)).toBeUndefined();
    await expectCleanLedger();
    expect(await settle(id)).toMatchObject({ settled: true, heldForEvaluation: reserve - TRAINING_CHARGE });

    // Crash between settlement and evaluation (the evaluator never ran): the hold waits, the audit is clean.
    await expectCleanLedger();

    // Crash in the transaction that ends the run, writing its charge: the run stays running, uncharged.
    await crashOnce('evaluation', id);
    const before = calls;
    await expect(evaluate(id)).rejects.toThrow(/simulated crash/);
    expect(calls - before).toBe(16);
    const run = await getEvaluationRunByFineTune(db, id);
    expect(run?.status).toBe('running');
    expect(await listEvaluationAnswers(db, run?.id ?? '')).toHaveLength(16);
    expect((await evaluationLedger(db, id)).count).toBe(0);
    expect(await getBalance(db, 'lic-money-2')).toMatchObject({ pending: reserve - TRAINING_CHARGE });
    await expectCleanLedger();

    // The rerun asks nothing (every answer is stored) and charges the run once.
    expect(await evaluate(id)).toBe('evaluated');
    await expectSummaryOfStoredRows(id);
    expect(calls - before).toBe(16);
    await expectChargedOnce(id, 'lic-money-2', await listEvaluationAnswers(db, run?.id ?? ''));
    await expectCleanLedger();
  });

  it('two evaluators of one fine-tune at once (a duplicated job): every answer charged once, in one charge', async () => {
    const { id } = await reservedFineTune('lic-money-3');
    await settle(id);
    const outcomes = await Promise.all([evaluate(id), evaluate(id)]);
    expect(outcomes.every((o) => o === 'evaluated' || o === 'already_done')).toBe(true);
    const run = await getEvaluationRunByFineTune(db, id);
    expect(run?.status).toBe('succeeded');
    const answers = await listEvaluationAnswers(db, run?.id ?? '');
    expect(answers).toHaveLength(16);
    await expectChargedOnce(id, 'lic-money-3', answers);
    await expectCleanLedger();
  });

  it('past its time limit: the answers stored are charged, the rest of the hold released, a late answer not stored', async () => {
    const { id } = await reservedFineTune('lic-money-4');
    await settle(id);
    sim.admin.setFaults({ seed: 1, latencyMs: 400 });
    try {
      expect(await evaluate(id, { timeLimitMs: 1_000, concurrency: 1 })).toBe('failed');
    } finally {
      sim.admin.setFaults({ seed: 1 });
    }
    const run = await getEvaluationRunByFineTune(db, id);
    expect(run?.status).toBe('failed');
    const answers = await listEvaluationAnswers(db, run?.id ?? '');
    expect(answers.length).toBeLessThan(16);
    await expectChargedOnce(id, 'lic-money-4', answers);

    // An answer arriving after the end (a straggling duplicate job) is dropped, so the charge stays true.
    const stored = await insertEvaluationAnswers(db, run?.id ?? '', [
      {
        role: 'base',
        position: 7,
        exampleId: 'late',
        model: BASE_MODEL,
        answer: '{}',
        validJson: true,
        extraKeys: [],
        fields: [],
        correctFields: 0,
        scoredFields: 0,
        promptTokens: 10,
        completionTokens: 10,
        credits: 1n,
      },
    ]);
    expect(stored).toBe(0);
    expect(await listEvaluationAnswers(db, run?.id ?? '')).toHaveLength(answers.length);
    await expectCleanLedger();
  });

  it('a run with nothing to evaluate releases the whole hold', async () => {
    const { id, reserve } = await reservedFineTune('lic-money-5');
    await settle(id);
    // The testing file is gone before the evaluator reads it: the run fails, nothing was asked.
    const dataset = await db
      .selectFrom('fine_tunes as f')
      .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
      .select('d.test_path')
      .where('f.id', '=', id)
      .executeTakeFirstOrThrow();
    await files.storage.remove(dataset.test_path ?? '');
    expect(await evaluate(id)).toBe('failed');
    expect((await getEvaluationRunByFineTune(db, id))?.reason).toBe('the testing file is missing');
    expect(await kindsOf(id)).toEqual([
      `reserve ${reserve}`,
      `post ${TRAINING_CHARGE}`,
      `evaluation_hold ${reserve - TRAINING_CHARGE}`,
      'evaluation 0',
    ]);
    expect(await getBalance(db, 'lic-money-5')).toMatchObject({
      pending: 0n,
      available: 1_000n - TRAINING_CHARGE,
    });
    const log = (await usageLog(db, 'lic-money-5')).filter((e) => e.fineTuneId === id);
    expect(log.map((e) => e.kind)).toEqual(['reservation', 'charge', 'release']);
    await expectCleanLedger();
  });

  it('usage above the hold is charged in full and blocks a license it takes below zero', async () => {
    // The reservation covered the training only (no margin left for the evaluation), and nothing else.
    await seedLicense(db, 'lic-money-6', TRAINING_CHARGE);
    const id = await unsettledFineTune(db, files.storage, {
      licenseId: 'lic-money-6',
      model: TUNED,
      reserve: TRAINING_CHARGE,
    });
    expect(await settle(id)).toMatchObject({ heldForEvaluation: 0n });
    expect(await evaluate(id)).toBe('evaluated');
    const used = (await evaluationLedger(db, id)).credits;
    expect(used).toBeGreaterThan(0n);
    expect(await getBalance(db, 'lic-money-6')).toEqual({
      posted: -used,
      pending: 0n,
      available: -used,
      overageBlocked: true,
    });
    await expectCleanLedger();
  });
});

describe('the auditor', () => {
  const invariants = async () => (await auditLedger(db)).violations.map((v) => v.invariant).sort();

  it('holds an evaluation hold to its run and a run charge to its answers', async () => {
    const { id } = await reservedFineTune('lic-money-audit');
    await settle(id);
    const run = await getEvaluationRunByFineTune(db, id);
    expect(await invariants()).toEqual([]);

    // The run ended without its charge: the hold would stay out forever.
    await sql`UPDATE evaluation_runs SET status = 'failed' WHERE id = ${run?.id}`.execute(db);
    expect(await invariants()).toEqual([
      'an evaluation hold keeps the unused reservation until its evaluation ends',
    ]);
    await sql`UPDATE evaluation_runs SET status = 'pending' WHERE id = ${run?.id}`.execute(db);
    expect(await evaluate(id)).toBe('evaluated');
    expect(await invariants()).toEqual([]);

    // An answer stored after the charge (what the FOR SHARE guard prevents): the charge no longer matches.
    await sql`
      INSERT INTO evaluation_answers (run_id, role, position, example_id, model, answer, valid_json, fields,
        correct_fields, scored_fields, prompt_tokens, completion_tokens, credits)
      VALUES (${run?.id}, 'champion', 0, 'x', 'm', '{}', true, '[]', 0, 0, 1, 1, 1)`.execute(db);
    expect(await invariants()).toEqual(['an evaluation is charged once, for the credits of its answers']);
    await sql`DELETE FROM evaluation_answers WHERE run_id = ${run?.id} AND role = 'champion'`.execute(db);
    expect(await invariants()).toEqual([]);
  });
});
