import { sql, type UpdateObject } from 'kysely';
import type { Executor } from '../connection.ts';
import type {
  Database,
  EvaluationAnswerRow,
  EvaluationRole,
  EvaluationRunRow,
  EvaluationRunStatus,
} from '../schema.ts';
import { firstRecord } from './records.ts';

/**
 * Held-out evaluation runs and their answers (migration 0020). A run belongs to one fine-tune; an
 * answer row per (run, role, position) is the claim that the example was asked and charged, so a
 * resumed run skips it and can never charge it twice.
 */

export const EVALUATION_ROLES: readonly EvaluationRole[] = ['fine_tuned', 'base', 'champion'];
export const DEFAULT_EVALUATION_MAX_EXAMPLES = 200;

/** The request's evaluation options as a fine-tune keeps them. */
export interface EvaluationOptions {
  evaluate: boolean;
  maxExamples: number;
}

/** The models of a run by role (champion null when the license had no active model for the configuration). */
export interface EvaluationModels {
  fine_tuned: string;
  base: string;
  champion: string | null;
}

export interface EvaluationRunRecord {
  id: string;
  fineTuneId: string;
  licenseId: string;
  correlationId: string;
  status: EvaluationRunStatus;
  models: EvaluationModels | null;
  championFineTuneId: string | null;
  examplesTotal: number | null;
  /** The evaluated examples' ids in file order (set when the run starts). */
  exampleIds: string[] | null;
  maxExamples: number;
  deadlineAt: Date | null;
  summary: unknown;
  reason: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function toEvaluationRunRecord(row: EvaluationRunRow): EvaluationRunRecord {
  return {
    id: row.id,
    fineTuneId: row.fine_tune_id,
    licenseId: row.license_id,
    correlationId: row.correlation_id,
    status: row.status,
    models: (row.models as EvaluationModels | null) ?? null,
    championFineTuneId: row.champion_fine_tune_id,
    examplesTotal: row.examples_total,
    exampleIds: (row.example_ids as string[] | null) ?? null,
    maxExamples: row.max_examples,
    deadlineAt: row.deadline_at,
    summary: row.summary,
    reason: row.reason,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** One stored field outcome of an answer (the scoring package's FieldRow without the repeated keys). */
export interface StoredFieldOutcome {
  field: string;
  outcome: string;
  expected: unknown;
  answered?: unknown;
}

export interface EvaluationAnswerRecord {
  runId: string;
  role: EvaluationRole;
  position: number;
  exampleId: string;
  model: string;
  answer: string;
  validJson: boolean;
  extraKeys: string[];
  fields: StoredFieldOutcome[];
  correctFields: number;
  scoredFields: number;
  promptTokens: number;
  completionTokens: number;
  credits: bigint;
  /** The answer's own ledger charge, on runs charged per answer (before migration 0060); else null. */
  transferId: string | null;
  createdAt: Date;
}

export function toEvaluationAnswerRecord(row: EvaluationAnswerRow): EvaluationAnswerRecord {
  return {
    runId: row.run_id,
    role: row.role,
    position: row.position,
    exampleId: row.example_id,
    model: row.model,
    answer: row.answer,
    validJson: row.valid_json,
    extraKeys: row.extra_keys,
    fields: row.fields as StoredFieldOutcome[],
    correctFields: row.correct_fields,
    scoredFields: row.scored_fields,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    credits: BigInt(row.credits),
    transferId: row.transfer_id,
    createdAt: row.created_at,
  };
}

/** The evaluation options stored on a fine-tune (defaults when none were given). */
export async function getEvaluationOptions(db: Executor, fineTuneId: string): Promise<EvaluationOptions> {
  const row = await db
    .selectFrom('fine_tunes')
    .select('evaluation_options')
    .where('id', '=', fineTuneId)
    .executeTakeFirst();
  const stored = (row?.evaluation_options ?? null) as Partial<EvaluationOptions> | null;
  return {
    evaluate: stored?.evaluate ?? true,
    maxExamples: stored?.maxExamples ?? DEFAULT_EVALUATION_MAX_EXAMPLES,
  };
}

/** Creates the fine-tune's run (pending) unless it has one; true when created now. */
export async function createEvaluationRun(
  tx: Executor,
  input: { fineTuneId: string; licenseId: string; correlationId: string; maxExamples: number },
): Promise<boolean> {
  const inserted = await tx
    .insertInto('evaluation_runs')
    .values({
      fine_tune_id: input.fineTuneId,
      license_id: input.licenseId,
      correlation_id: input.correlationId,
      max_examples: input.maxExamples,
    })
    .onConflict((oc) => oc.column('fine_tune_id').doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** The fine-tune's run (one per fine-tune), as a select to run or lock. */
const runOf = (db: Executor, fineTuneId: string) =>
  db.selectFrom('evaluation_runs').selectAll().where('fine_tune_id', '=', fineTuneId);

export async function getEvaluationRunByFineTune(
  db: Executor,
  fineTuneId: string,
): Promise<EvaluationRunRecord | undefined> {
  return firstRecord(runOf(db, fineTuneId), toEvaluationRunRecord);
}

/** Updates the fine-tune's run, stamping `updated_at` (the caller adds the status it moves from). */
const updateRun = (tx: Executor, fineTuneId: string, set: UpdateObject<Database, 'evaluation_runs'>) =>
  tx
    .updateTable('evaluation_runs')
    .set({ ...set, updated_at: sql`now()` })
    .where('fine_tune_id', '=', fineTuneId);

export async function lockEvaluationRun(
  tx: Executor,
  fineTuneId: string,
): Promise<EvaluationRunRecord | undefined> {
  return firstRecord(runOf(tx, fineTuneId).forUpdate(), toEvaluationRunRecord);
}

/**
 * `pending → running` with what the run evaluates: the models, the example ids and the deadline. Only
 * the first start writes them, so a resumed run keeps the same examples, models and deadline.
 */
export async function startEvaluationRun(
  tx: Executor,
  fineTuneId: string,
  start: {
    models: EvaluationModels;
    championFineTuneId: string | null;
    examplesTotal: number;
    exampleIds: string[];
    deadlineAt: Date;
  },
): Promise<EvaluationRunRecord | undefined> {
  const started = updateRun(tx, fineTuneId, {
    status: 'running',
    models: JSON.stringify(start.models),
    champion_fine_tune_id: start.championFineTuneId,
    examples_total: start.examplesTotal,
    example_ids: JSON.stringify(start.exampleIds),
    deadline_at: start.deadlineAt,
    started_at: sql`now()`,
  });
  return firstRecord(started.where('status', '=', 'pending').returningAll(), toEvaluationRunRecord);
}

/** Ends an open run (succeeded with its summary, or failed with the reason); false when already ended. */
export async function finishEvaluationRun(
  tx: Executor,
  fineTuneId: string,
  end: { status: 'succeeded' | 'failed'; summary?: unknown; reason?: string | null },
): Promise<boolean> {
  const result = await updateRun(tx, fineTuneId, {
    status: end.status,
    summary: end.summary === undefined ? null : JSON.stringify(end.summary),
    reason: end.reason ?? null,
    finished_at: sql`now()`,
  })
    .where('status', 'in', ['pending', 'running'])
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Runs not finished (for the evaluator's recovery sweep), oldest first. */
export async function listOpenEvaluationRuns(db: Executor, limit = 10_000): Promise<EvaluationRunRecord[]> {
  const rows = await db
    .selectFrom('evaluation_runs')
    .selectAll()
    .where('status', 'in', ['pending', 'running'])
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map(toEvaluationRunRecord);
}

/** A scored answer to store (its charge is the run's, written when the run ends). */
export type NewEvaluationAnswer = Omit<EvaluationAnswerRecord, 'createdAt' | 'transferId'>;

/** An answer's columns but its run's, the json ones as values (credits as the int8 text). */
const answerColumns = (a: Omit<NewEvaluationAnswer, 'runId'>) => ({
  role: a.role,
  position: a.position,
  example_id: a.exampleId,
  model: a.model,
  answer: a.answer,
  valid_json: a.validJson,
  extra_keys: a.extraKeys,
  fields: a.fields,
  correct_fields: a.correctFields,
  scored_fields: a.scoredFields,
  prompt_tokens: a.promptTokens,
  completion_tokens: a.completionTokens,
  credits: a.credits.toString(),
});

/** Stores one scored answer; false when the (run, role, position) was answered already (nothing written). */
export async function insertEvaluationAnswer(tx: Executor, a: NewEvaluationAnswer): Promise<boolean> {
  const inserted = await tx
    .insertInto('evaluation_answers')
    .values({
      run_id: a.runId,
      ...answerColumns(a),
      extra_keys: JSON.stringify(a.extraKeys),
      fields: JSON.stringify(a.fields),
    })
    .onConflict((oc) => oc.columns(['run_id', 'role', 'position']).doNothing())
    .returning('position')
    .executeTakeFirst();
  return inserted !== undefined;
}

/**
 * Stores a batch of scored answers of one run in ONE statement (alone: one round trip, one commit),
 * only while the run is running: the statement takes the run row FOR SHARE, so an answer is either
 * stored before the run ends (and is in the run's charge, which the ending transaction sums after
 * locking the row) or not at all (an answer arriving after the end, from a duplicate job, is dropped).
 * An answer already stored for its (run, role, position) is left as it is. Answers carry no ledger
 * entry: the run is charged once when it ends (`chargeEvaluationRun`). Returns how many were stored now.
 */
export async function insertEvaluationAnswers(
  db: Executor,
  runId: string,
  answers: readonly Omit<NewEvaluationAnswer, 'runId'>[],
): Promise<number> {
  if (answers.length === 0) return 0;
  // One JSON text for the batch: JSON.stringify is native, so this costs the worker about half the CPU
  // per answer that a parameter array per column does (the driver escapes every array element in JS).
  const rows = JSON.stringify(answers.map(answerColumns));
  const result = await sql<{ stored: number }>`
    WITH run AS (
      SELECT id FROM evaluation_runs WHERE id = ${runId} AND status = 'running' FOR SHARE
    ), stored AS (
      INSERT INTO evaluation_answers (run_id, role, position, example_id, model, answer, valid_json,
        extra_keys, fields, correct_fields, scored_fields, prompt_tokens, completion_tokens, credits)
      SELECT run.id, x.role, x.position, x.example_id, x.model, x.answer, x.valid_json, x.extra_keys,
        x.fields, x.correct_fields, x.scored_fields, x.prompt_tokens, x.completion_tokens, x.credits
      FROM run, jsonb_to_recordset(${rows}::jsonb) AS x(role text, position integer, example_id text,
        model text, answer text, valid_json boolean, extra_keys jsonb, fields jsonb, correct_fields integer,
        scored_fields integer, prompt_tokens integer, completion_tokens integer, credits bigint)
      ORDER BY x.role, x.position
      ON CONFLICT (run_id, role, position) DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::int AS stored FROM stored`.execute(db);
  return result.rows[0]?.stored ?? 0;
}

/** How many answers a run has stored. */
export async function countEvaluationAnswers(db: Executor, runId: string): Promise<number> {
  const row = await db
    .selectFrom('evaluation_answers')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A run's answers in their order: by position, then role. */
const answersOf = (db: Executor, runId: string) =>
  db
    .selectFrom('evaluation_answers')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('position')
    .orderBy('role');

/** Every answer of a run, by position then role. */
export async function listEvaluationAnswers(db: Executor, runId: string): Promise<EvaluationAnswerRecord[]> {
  return (await answersOf(db, runId).execute()).map(toEvaluationAnswerRecord);
}

/** A page of a run's answers (ordered by position, then role). */
export async function pageEvaluationAnswers(
  db: Executor,
  runId: string,
  page: { offset: number; limit: number },
): Promise<{ rows: EvaluationAnswerRecord[]; total: number }> {
  const rows = await answersOf(db, runId).offset(page.offset).limit(page.limit).execute();
  return { rows: rows.map(toEvaluationAnswerRecord), total: await countEvaluationAnswers(db, runId) };
}

/**
 * The champion: the license's active fine-tuned model trained for the same model configuration (the
 * request's `modelConfig`, compared as JSON), other than `fineTuneId`; the most recently changed one.
 */
export async function findChampion(
  db: Executor,
  input: { licenseId: string; fineTuneId: string; datasetId: string },
): Promise<{ fineTuneId: string; model: string } | undefined> {
  const row = await db
    .selectFrom('fine_tunes as f')
    .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
    .innerJoin('fine_tune_requests as r', 'r.id', 'd.request_row_id')
    .select(['f.id', 'f.fine_tuned_model'])
    .where('f.license_id', '=', input.licenseId)
    .where('f.active', '=', true)
    .where('f.fine_tuned_model', 'is not', null)
    .where('f.id', '<>', input.fineTuneId)
    .where(
      sql<boolean>`r.payload -> 'modelConfig' = (
        SELECT r2.payload -> 'modelConfig' FROM datasets d2
        JOIN fine_tune_requests r2 ON r2.id = d2.request_row_id WHERE d2.id = ${input.datasetId})`,
    )
    .orderBy('f.updated_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.fine_tuned_model ? { fineTuneId: row.id, model: row.fine_tuned_model } : undefined;
}
