// One call from examples and answers to rows, summaries and verdicts; the parts stay usable alone for a
// stage that scores answers as they arrive and stores the rows.
import { type FieldSpec, type FieldSpecOptions, inferFieldSpecs, type JsonObject } from './fields.ts';
import {
  type EvaluationExample,
  type ExampleRow,
  expectedObject,
  type FieldRow,
  type PreparedExample,
  prepareExample,
  scoreAnswer,
} from './score.ts';
import { ALPHA, compareModels, type ModelSummary, type PairedComparison, summarise } from './summary.ts';

export interface ModelAnswer {
  model: string;
  exampleId: string;
  answer: string;
}

export interface ScoredRows {
  specs: FieldSpec[];
  exampleRows: ExampleRow[];
  fieldRows: FieldRow[];
}

/** Field specs from the examples' expected values, and each example read once for scoring. */
export function prepareEvaluation(
  examples: readonly EvaluationExample[],
  opts: FieldSpecOptions = {},
): { specs: FieldSpec[]; examples: Map<string, PreparedExample> } {
  const onDemand = prepareEvaluationOnDemand(examples, opts);
  const prepared = new Map<string, PreparedExample>();
  for (const e of examples) prepared.set(e.id, onDemand.example(e.id) as PreparedExample);
  return { specs: onDemand.specs(), examples: prepared };
}

/**
 * Every check of `prepareEvaluation` made at once (each expected answer a JSON object, no id twice), but
 * the field specs inferred on the first use and each example's expected values read on its own first use
 * (then kept): a stage can start its calls without waiting for them. `example` gives undefined for an
 * unknown id.
 */
export function prepareEvaluationOnDemand(
  examples: readonly EvaluationExample[],
  opts: FieldSpecOptions = {},
): { specs(): FieldSpec[]; example(id: string): PreparedExample | undefined } {
  const parsed = examples.map((e) => ({ id: e.id, expected: expectedObject(e) }));
  const objects = new Map<string, JsonObject>();
  for (const o of parsed) {
    if (objects.has(o.id)) throw new Error(`example ${o.id} appears twice`);
    objects.set(o.id, o.expected);
  }
  let specs: FieldSpec[] | undefined;
  const specsOf = () => {
    specs ??= inferFieldSpecs(
      parsed.map((o) => o.expected),
      opts,
    );
    return specs;
  };
  const prepared = new Map<string, PreparedExample>();
  return {
    specs: specsOf,
    example(id) {
      let p = prepared.get(id);
      if (p) return p;
      const expected = objects.get(id);
      if (!expected) return undefined;
      p = prepareExample(specsOf(), { id, expected });
      prepared.set(id, p);
      return p;
    },
  };
}

/** Scores every answer; an answer to an unknown example is an error naming it. */
export function scoreAnswers(
  examples: readonly EvaluationExample[],
  answers: readonly ModelAnswer[],
  opts: FieldSpecOptions = {},
): ScoredRows {
  const { specs, examples: prepared } = prepareEvaluation(examples, opts);
  const exampleRows: ExampleRow[] = [];
  const fieldRows: FieldRow[] = [];
  for (const a of answers) {
    const example = prepared.get(a.exampleId);
    if (!example) throw new Error(`answer of ${a.model} to unknown example ${a.exampleId}`);
    const scored = scoreAnswer(example, a.model, a.answer);
    exampleRows.push(scored.example);
    for (const f of scored.fields) fieldRows.push(f);
  }
  return { specs, exampleRows, fieldRows };
}

export interface EvaluationReport {
  models: ModelSummary[];
  /** The candidate against each other model, in the order given. */
  comparisons: PairedComparison[];
}

/** Summaries of every model in the rows and the candidate's paired comparison with each of the others. */
export function report(
  rows: Pick<ScoredRows, 'exampleRows' | 'fieldRows'>,
  candidate: string,
  comparisons: readonly string[],
  alpha = ALPHA,
): EvaluationReport {
  return {
    models: summarise(rows.exampleRows, rows.fieldRows),
    comparisons: comparisons.map((c) => compareModels(rows.fieldRows, candidate, c, alpha)),
  };
}
