import { jobOptionsSchema } from '@tuneline/contracts';
import { estimateEvaluation } from '@tuneline/dataset';
import type { DatasetRecord, EvaluationAnswerRecord } from '@tuneline/db';
import { z } from 'zod';
import { csvText } from './csv.ts';
import { migrationSchema } from './migration-schemas.ts';

/** Held-out evaluation as the API shows it: the dataset grid's estimate, and a fine-tune's evaluation. */

const count = z.string().regex(/^\d+$/);

export const evaluationEstimateSchema = z
  .object({
    evaluated: z.boolean(),
    reason: z.string().nullable().describe('why nothing will be evaluated (e.g. testPercent 0)'),
    examples: z.int().describe('testing examples evaluated (capped by evaluation.maxExamples)'),
    models: z.int().describe('models asked each example: fine-tuned, base and (if any) the champion'),
    tokensPerCall: z.int(),
    tokens: count,
    credits: count.describe('reserved with the training'),
  })
  .meta({ id: 'EvaluationEstimate' });

/** The evaluation estimate of a dataset, with the evaluation options its request gave. */
export function datasetEvaluationEstimate(d: DatasetRecord) {
  const options = jobOptionsSchema.safeParse(d.jobOptions ?? {});
  const estimate = estimateEvaluation({
    baseModel: d.baseModel,
    testExamples: d.testExamples,
    testTokens: d.testTokens,
    ...(options.success
      ? { evaluate: options.data.evaluate, maxExamples: options.data.evaluation.maxExamples }
      : {}),
  });
  return { ...estimate, tokens: estimate.tokens.toString(), credits: estimate.credits.toString() };
}

export const evaluationQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  format: z.enum(['json', 'csv']).optional(),
});

const proportion = z.object({
  k: z.int(),
  n: z.int(),
  rate: z.number().nullable(),
  low: z.number(),
  high: z.number(),
});

const tableRow = z.object({
  label: z.string(),
  base: proportion.nullable(),
  champion: proportion.nullable(),
  fineTuned: proportion.nullable(),
  deltaBase: z.number().nullable(),
  deltaChampion: z.number().nullable(),
});

const answerRow = z.object({
  exampleId: z.string(),
  position: z.int(),
  role: z.enum(['fine_tuned', 'base', 'champion']),
  model: z.string(),
  answer: z.string(),
  validJson: z.boolean(),
  extraKeys: z.array(z.string()),
  correctFields: z.int(),
  scoredFields: z.int(),
  fields: z.array(
    z.object({
      field: z.string(),
      outcome: z.string(),
      expected: z.unknown(),
      answered: z.unknown().optional(),
    }),
  ),
  promptTokens: z.int(),
  completionTokens: z.int(),
  credits: count,
});

/** What became of a version's model (issue 22.4). */
export const versionPromotionSchema = z
  .object({
    decision: z
      .enum(['promoted', 'kept', 'manual'])
      .describe(
        'promoted: served (alias moved, model active); kept: the champion stays; manual: left to you',
      ),
    rule: z.string().nullable().describe("the policy's rule when it decided; null for a promotion by hand"),
    reason: z.string(),
    actor: z.string().describe('`policy:<profile>`, or `key:<prefix>` of who promoted by hand'),
    alias: z.string().nullable().describe('the alias moved (null: none moved)'),
    fineTuneId: z.uuid(),
    championFineTuneId: z.uuid().nullable().describe('the champion it was compared with, or replaced'),
    at: z.string(),
  })
  .meta({ id: 'VersionPromotion' });

export const evaluationSchema = z
  .object({
    fineTuneId: z.uuid(),
    status: z.enum(['none', 'pending', 'running', 'succeeded', 'failed']),
    reason: z.string().nullable(),
    models: z
      .object({ fine_tuned: z.string(), base: z.string(), champion: z.string().nullable() })
      .nullable(),
    examplesTotal: z.int().nullable(),
    examplesEvaluated: z.int(),
    charged: z.object({ credits: count, tokens: count }),
    table: z
      .object({
        hasChampion: z.boolean(),
        rows: z.array(tableRow),
        verdicts: z.array(z.string()),
        verdictBase: z.string().nullable(),
        verdictChampion: z.string().nullable(),
      })
      .nullable(),
    summary: z.unknown().describe('per model and field: accuracy, Wilson intervals, outcomes, comparisons'),
    profileVersion: z
      .object({
        profile: z.string(),
        version: z.int(),
        alias: z.string().nullable(),
        serving: z.boolean().describe("the profile's alias serves this model now"),
        promotion: versionPromotionSchema.nullable(),
        promotePath: z.string().describe('POST here to promote this version by hand'),
      })
      .nullable()
      .describe('the training-profile version this fine-tune trained, and what became of it (issue 22.4)'),
    migration: migrationSchema
      .nullable()
      .describe(
        'the migration that trained this fine-tune (issue 21.4): the champion is the model it migrates from, and its decision',
      ),
    rows: z.array(answerRow),
    page: z.object({ offset: z.int(), limit: z.int(), total: z.int(), nextOffset: z.int().nullable() }),
  })
  .meta({ id: 'Evaluation' });

export function answerView(a: EvaluationAnswerRecord) {
  return {
    exampleId: a.exampleId,
    position: a.position,
    role: a.role,
    model: a.model,
    answer: a.answer,
    validJson: a.validJson,
    extraKeys: a.extraKeys,
    correctFields: a.correctFields,
    scoredFields: a.scoredFields,
    fields: a.fields,
    promptTokens: a.promptTokens,
    completionTokens: a.completionTokens,
    credits: a.credits.toString(),
  };
}

const CSV_COLUMNS = [
  'exampleId',
  'position',
  'role',
  'model',
  'field',
  'outcome',
  'expected',
  'answered',
  'validJson',
] as const;

/** One line per (example, model, field): what was expected and what the model answered. */
export function evaluationCsv(answers: readonly EvaluationAnswerRecord[]): string {
  const rows = answers.flatMap((a) =>
    a.fields.map((f) => ({
      exampleId: a.exampleId,
      position: a.position,
      role: a.role,
      model: a.model,
      field: f.field,
      outcome: f.outcome,
      expected: f.expected,
      answered: f.answered,
      validJson: a.validJson,
    })),
  );
  return csvText(CSV_COLUMNS, rows, {
    text: (v) => (typeof v === 'string' ? v : JSON.stringify(v)),
    negativeNumber: /^-[\d.]+$/,
  });
}
