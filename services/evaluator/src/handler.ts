import { evaluateMessage, queues } from '@tuneline/contracts';
import { type DatasetStorage, inferenceCredits, inferencePrice, isStorageError } from '@tuneline/dataset';
import {
  countEvaluationAnswers,
  type EvaluationModels,
  type EvaluationRole,
  findDataset,
  findRequestById,
  getEvaluationRunByFineTune,
  getFineTune,
  insertEvaluationAnswers,
  listEvaluationAnswers,
  listOpenEvaluationRuns,
  type NewEvaluationAnswer,
  type StoredFieldOutcome,
  startEvaluationRun,
} from '@tuneline/db';
import {
  type EvaluationSummary,
  type PreparedExample,
  prepareEvaluationOnDemand,
  scoreAnswer,
  summariseStoredAnswers,
} from '@tuneline/evaluation';
import { ProviderError, ProviderNotConfiguredError } from '@tuneline/provider';
import {
  defineStage,
  type JobContext,
  PermanentError,
  type StageDeps,
  stageFailure,
} from '@tuneline/runtime';
import { askWithRetries, DeadlineError, runPool } from './ask.ts';
import {
  readTestingFile,
  requestSplitSeed,
  sampleExamples,
  type TestExample,
  testingDocumentIds,
} from './examples.ts';
import { findChampionOf, finishAndDecide } from './promotion.ts';
import {
  type EvaluationTarget,
  type EvaluatorProvider,
  type EvaluatorProviders,
  evaluationTargets,
} from './targets.ts';
import { AnswerWriter } from './writer.ts';

export { askWithRetries, DeadlineError, runPool } from './ask.ts';
export { readTestingFile, requestSplitSeed, sampleExamples, testingDocumentIds } from './examples.ts';
export { decideVersionPromotion, findChampionOf, finishAndDecide } from './promotion.ts';

export interface EvaluatorDeps extends StageDeps {
  /** The deployment default's chat (every model, when `providers` is not given). */
  provider: EvaluatorProvider;
  /** Several providers: each model is asked at its fine-tune's own provider (null: the default). */
  providers?: EvaluatorProviders;
  storage: DatasetStorage;
  /** From the run's start to its end, at most. */
  timeLimitMs: number;
  /** Chat calls in flight per job. */
  concurrency: number;
  /** Tries of one example's call on transient errors. */
  callAttempts: number;
  maxTokens: number;
  /** Told how long scoring took (one answer, or the final summary), in ms: the bench's scoring share. */
  onScored?(ms: number): void;
}

/** What the evaluator stores of one scored answer (its run aside): the answer as asked, plus its scores. */
export function answerRecord(
  asked: Pick<
    NewEvaluationAnswer,
    'role' | 'position' | 'exampleId' | 'model' | 'answer' | 'promptTokens' | 'completionTokens' | 'credits'
  >,
  scored: ReturnType<typeof scoreAnswer>,
): Omit<NewEvaluationAnswer, 'runId'> {
  // The stored outcomes (without the row's repeated example id and model) and the right ones, in one pass.
  const fields: StoredFieldOutcome[] = [];
  let correct = 0;
  for (const f of scored.fields) {
    if (f.outcome === 'correct') correct++;
    fields.push(
      f.answered !== undefined
        ? { field: f.field, outcome: f.outcome, expected: f.expected, answered: f.answered }
        : { field: f.field, outcome: f.outcome, expected: f.expected },
    );
  }
  return {
    ...asked,
    validJson: scored.example.validJson,
    extraKeys: scored.example.extraKeys,
    fields,
    correctFields: correct,
    scoredFields: scored.fields.length,
  };
}

export type EvaluateOutcome = 'evaluated' | 'failed' | 'already_done';

const ROLES: readonly EvaluationRole[] = ['fine_tuned', 'base', 'champion'];

/**
 * Evaluates one settled fine-tune on its testing file and then queues its outcome e-mails (lifecycle
 * `finishEvaluation`). The first run fixes the examples (the testing file's, or a sample of
 * `maxExamples` drawn with the dataset's split seed), the models (fine-tuned, base, champion) and the
 * deadline; every later run of the job resumes from the answers stored. Each answer is stored under a
 * unique key with its credits, so no example is asked again once stored; the run is charged once, the
 * sum of its answers, in the transaction that ends it (`finishAndDecide`), which releases the rest of the
 * fine-tune's evaluation hold. A 429 pauses the queue (the job comes back without spending an attempt); a refusal, the time
 * limit or the last attempt ends the evaluation as failed, and the e-mail says why.
 */
export async function evaluateFineTune(
  deps: EvaluatorDeps,
  fineTuneId: string,
  ctx: Pick<JobContext, 'attempt' | 'log'>,
): Promise<EvaluateOutcome> {
  const { db } = deps;
  // The start's reads go together where one does not need another's answer (each a round trip).
  const [fineTune, runFound] = await Promise.all([
    getFineTune(db, fineTuneId),
    getEvaluationRunByFineTune(db, fineTuneId),
  ]);
  if (!fineTune) throw new PermanentError(`fine-tune ${fineTuneId} does not exist`);
  let run = runFound;
  if (!run) throw new PermanentError(`fine-tune ${fineTuneId} has no evaluation run`);
  if (run.status === 'succeeded' || run.status === 'failed') {
    // Finished earlier (a second message): make sure the e-mails and the charge exist (both idempotent).
    await finishAndDecide(db, fineTune, run, { status: 'failed', reason: run.reason ?? '' });
    return 'already_done';
  }
  const runId = run.id;
  const fail = async (reason: string): Promise<EvaluateOutcome> => {
    const championFineTuneId = run?.championFineTuneId ?? null;
    await finishAndDecide(db, fineTune, { id: runId, championFineTuneId }, { status: 'failed', reason });
    ctx.log.warn({ fineTuneId, reason }, 'evaluation failed; the e-mail goes without it');
    return 'failed';
  };

  const dataset = await findDataset(db, fineTune.datasetId);
  if (!dataset?.testPath) return fail('the dataset has no testing file');
  if (!fineTune.fineTunedModel) return fail('the fine-tune has no fine-tuned model');
  const pending = run.status === 'pending';
  const fineTunedModel = fineTune.fineTunedModel;
  // Beside the testing file: the request (its ids and split seed), and on a first run the champion; on a
  // resumed run, the answers earlier runs stored. A failure of one is awaited before it is thrown.
  const request$ = findRequestById(db, dataset.requestRowId);
  const champion$ = pending ? findChampionOf(db, fineTune, dataset.id) : undefined;
  const earlier$ = pending ? undefined : listEvaluationAnswers(db, run.id);
  const others = Promise.allSettled([request$, champion$, earlier$]);
  let examples: TestExample[];
  try {
    examples = await readTestingFile(deps.storage, dataset.testPath);
  } catch (err) {
    await others;
    // Storage reports a missing object as a `storage_missing` StorageError (ENOENT only from a raw read).
    const missing =
      (isStorageError(err) && err.kind === 'storage_missing') ||
      (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (missing) return fail('the testing file is missing');
    throw err;
  }
  await others;
  const request = await request$;
  const ids = testingDocumentIds(request?.payload, examples.length);
  if (ids && new Set(ids).size === ids.length) {
    examples = examples.map((e, i) => ({ ...e, id: ids[i] as string }));
  }

  if (pending) {
    const seed = requestSplitSeed(request?.payload) ?? dataset.contentHash ?? dataset.id;
    const selected = sampleExamples(examples, run.maxExamples, seed);
    const champion = await champion$;
    const models: EvaluationModels = {
      fine_tuned: fineTunedModel,
      base: fineTune.baseModel,
      champion: champion?.model ?? null,
    };
    const started = await startEvaluationRun(db, fineTune.id, {
      models,
      championFineTuneId: champion?.fineTuneId ?? null,
      examplesTotal: examples.length,
      exampleIds: selected.map((e) => e.id),
      deadlineAt: new Date(Date.now() + deps.timeLimitMs),
    });
    // Another job started it first (or ended it): go by what it fixed.
    if (!started) return evaluateFineTune(deps, fineTuneId, ctx);
    run = started;
  }

  const models = run.models as EvaluationModels;
  const wanted = new Set(run.exampleIds ?? []);
  const selected = examples.filter((e) => wanted.has(e.id));
  if (selected.length !== wanted.size) {
    return fail(`the testing file no longer holds the ${wanted.size} examples the evaluation chose`);
  }
  // Every expected answer is checked (and the field specs inferred) now; each example's expected values
  // are read when its first answer comes, so the calls start without waiting for them.
  let prepared: ReturnType<typeof prepareEvaluationOnDemand>;
  try {
    prepared = prepareEvaluationOnDemand(selected.map((e) => ({ id: e.id, expected: e.expected })));
  } catch (err) {
    return fail(`the testing file's answers cannot be scored: ${(err as Error).message}`);
  }

  let targets: Partial<Record<EvaluationRole, EvaluationTarget>>;
  try {
    targets = await evaluationTargets(deps, fineTune, models, run.championFineTuneId);
  } catch (err) {
    if (err instanceof ProviderNotConfiguredError) return fail(err.message);
    throw err;
  }
  const deadline = run.deadlineAt?.getTime() ?? Date.now() + deps.timeLimitMs;
  // The answers earlier runs of the job stored: not asked again, and with this run's, what the summary is
  // made of. None when this job started the run just now (answers are stored only while it runs).
  const earlier = (await earlier$) ?? [];
  const answered = new Set(earlier.map((a) => `${a.role}:${a.position}`));
  const tasks: { role: EvaluationRole; model: string; target: EvaluationTarget; example: TestExample }[] = [];
  for (const example of selected) {
    for (const role of ROLES) {
      const model = models[role];
      const target = targets[role];
      if (model && target && !answered.has(`${role}:${example.position}`))
        tasks.push({ role, model, target, example });
    }
  }
  const price = inferencePrice(fineTune.baseModel);
  // This run's answers, handed to the writer. Once every batch is written whole they are what this run
  // stored; a batch stored only in part (another job stored some of them first, or ended the run) makes
  // the summary read the stored rows back instead.
  const handedOver: Omit<NewEvaluationAnswer, 'runId'>[] = [];
  let summary: EvaluationSummary | undefined;
  const summarise = (m: EvaluationModels, answers: Omit<NewEvaluationAnswer, 'runId'>[]) => {
    const started = performance.now();
    // In the order `listEvaluationAnswers` gives (position, then role): the same summary either way.
    answers.sort((a, b) => a.position - b.position || compareText(a.role, b.role));
    const made = summariseStoredAnswers(m, answers);
    deps.onScored?.(performance.now() - started);
    return made;
  };
  let storedElsewhere = false;
  const writer = new AnswerWriter<Omit<NewEvaluationAnswer, 'runId'>>(
    async (batch) => {
      const n = await insertEvaluationAnswers(db, runId, batch);
      if (n !== batch.length) storedElsewhere = true;
    },
    deps.concurrency * 4,
    50,
  );
  try {
    await runPool(tasks, deps.concurrency, async ({ role, model, target, example }) => {
      const result = await askWithRetries(
        target.ask,
        { model, messages: example.messages, maxTokens: deps.maxTokens, temperature: 0 },
        { deadline, attempts: deps.callAttempts },
      );
      const scoringStarted = performance.now();
      const scored = scoreAnswer(prepared.example(example.id) as PreparedExample, model, result.content);
      deps.onScored?.(performance.now() - scoringStarted);
      const { promptTokens, completionTokens } = result.usage;
      const credits = inferenceCredits(price, promptTokens, completionTokens);
      // Stored behind the next call (AnswerWriter), once whatever retries; charged with the run.
      const answer = answerRecord(
        {
          role,
          position: example.position,
          exampleId: example.id,
          model,
          answer: result.content,
          promptTokens,
          completionTokens,
          credits,
        },
        scored,
      );
      handedOver.push(answer);
      await writer.add(answer);
    }).catch(async (err: unknown) => {
      await writer.drain().catch(() => {});
      throw err;
    });
    const drained = writer.drain();
    // The summary is made while the last batch is written (its statement leaves within this turn).
    await new Promise((resolve) => setImmediate(resolve));
    summary = summarise(models, [...earlier, ...handedOver]);
    await drained;
  } catch (err) {
    if (err instanceof DeadlineError) {
      const done = await countEvaluationAnswers(db, runId);
      return fail(
        `the evaluation exceeded its time limit of ${Math.round(deps.timeLimitMs / 1000)} s ` +
          `(${done} of ${selected.length * countModels(models)} answers)`,
      );
    }
    if (err instanceof ProviderError && (err.kind === 'rejected' || err.kind === 'not_found')) {
      return fail(`the provider refused an evaluation call: ${err.message}`);
    }
    const failure = stageFailure(err);
    const lastAttempt = ctx.attempt >= (queues.evaluate.jobOptions.attempts ?? 1);
    if (lastAttempt && !(failure instanceof Error && failure.name === 'RateLimitedError')) {
      return fail(`the evaluation could not be completed: ${(err as Error).message}`);
    }
    throw failure;
  }

  if (storedElsewhere || !summary) summary = summarise(models, await listEvaluationAnswers(db, runId));
  await finishAndDecide(db, fineTune, run, { status: 'succeeded', summary });
  ctx.log.info(
    { fineTuneId, examples: summary.examples, lines: summary.report.comparisons.map((c) => c.line) },
    'evaluation done',
  );
  return 'evaluated';
}

const countModels = (m: EvaluationModels) => (m.champion ? 3 : 2);
/** The order `listEvaluationAnswers` gives (position, then role), so the summary is the same either way. */
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Stage: consumes `evaluate`. */
export const evaluatorStage = defineStage<'evaluate', EvaluatorDeps>({
  queue: 'evaluate',
  async handle(message, ctx, deps) {
    const outcome = await evaluateFineTune(deps, message.fineTuneId, ctx);
    ctx.log.info({ fineTuneId: message.fineTuneId, outcome }, 'evaluation');
  },
  /** Runs not finished (their message may have been lost with Redis, or their job ran out of tries). */
  async recover(deps) {
    const runs = await listOpenEvaluationRuns(deps.db);
    return runs.map((r) => evaluateMessage({ fineTuneId: r.fineTuneId, correlationId: r.correlationId }));
  },
});
