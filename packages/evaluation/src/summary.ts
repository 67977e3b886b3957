// Summaries of stored rows: per model, per field and overall, and paired comparisons between models.
// Everything here is computed from ExampleRow and FieldRow alone, so an evaluation kept as rows can be
// summarised again at any time with the same figures.
import type { ExampleRow, FieldOutcome, FieldRow } from './score.ts';
import { FIELD_OUTCOMES } from './score.ts';
import { mcnemarExact, wilsonInterval } from './stats.ts';

/** k of n, with its rate and 95% Wilson interval (rate null when n = 0). */
export interface Proportion {
  k: number;
  n: number;
  rate: number | null;
  low: number;
  high: number;
}

export function proportion(k: number, n: number): Proportion {
  return { k, n, rate: n === 0 ? null : k / n, ...wilsonInterval(k, n) };
}

export interface FieldSummary {
  field: string;
  accuracy: Proportion;
  outcomes: Record<FieldOutcome, number>;
}

export interface ModelSummary {
  model: string;
  /** Examples answered. */
  examples: number;
  /** Answers that parsed as one JSON object. */
  validJson: Proportion;
  /** All scored fields of all examples. */
  fieldAccuracy: Proportion;
  /** Examples whose answer is valid JSON with every scored field correct. */
  allFieldsRight: Proportion;
  fields: FieldSummary[];
}

const emptyOutcomes = (): Record<FieldOutcome, number> =>
  Object.fromEntries(FIELD_OUTCOMES.map((o) => [o, 0])) as Record<FieldOutcome, number>;

/** One summary per model, models and fields in the order the rows first name them. */
export function summarise(
  exampleRows: readonly ExampleRow[],
  fieldRows: readonly FieldRow[],
): ModelSummary[] {
  const models = new Map<string, { ids: Set<string>; valid: number; wrongExamples: Set<string> }>();
  const model = (name: string) => {
    let m = models.get(name);
    if (!m) {
      m = { ids: new Set(), valid: 0, wrongExamples: new Set() };
      models.set(name, m);
    }
    return m;
  };
  for (const r of exampleRows) {
    const m = model(r.model);
    m.ids.add(r.exampleId);
    if (r.validJson) m.valid++;
    else m.wrongExamples.add(r.exampleId);
  }
  const fields = new Map<string, Map<string, Record<FieldOutcome, number>>>();
  for (const r of fieldRows) {
    const m = model(r.model);
    if (r.outcome !== 'correct') m.wrongExamples.add(r.exampleId);
    let perField = fields.get(r.model);
    if (!perField) {
      perField = new Map();
      fields.set(r.model, perField);
    }
    let counts = perField.get(r.field);
    if (!counts) {
      counts = emptyOutcomes();
      perField.set(r.field, counts);
    }
    counts[r.outcome]++;
  }
  return [...models].map(([name, m]) => {
    const perField = [...(fields.get(name) ?? new Map<string, Record<FieldOutcome, number>>())].map(
      ([field, outcomes]): FieldSummary => {
        const n = Object.values(outcomes).reduce((a, b) => a + b, 0);
        return { field, accuracy: proportion(outcomes.correct, n), outcomes };
      },
    );
    const k = perField.reduce((a, f) => a + f.accuracy.k, 0);
    const n = perField.reduce((a, f) => a + f.accuracy.n, 0);
    let wrong = 0;
    for (const id of m.wrongExamples) if (m.ids.has(id)) wrong++;
    return {
      model: name,
      examples: m.ids.size,
      validJson: proportion(m.valid, m.ids.size),
      fieldAccuracy: proportion(k, n),
      allFieldsRight: proportion(m.ids.size - wrong, m.ids.size),
      fields: perField,
    };
  });
}

export type Verdict = 'better' | 'worse' | 'no significant difference';

/** Paired outcomes of two models on the same (example, field) pairs. */
export interface PairedCounts {
  /** Pairs scored for both models: the N of "at n = N". */
  n: number;
  bothRight: number;
  /** Right for the candidate only (McNemar's b). */
  candidateOnly: number;
  /** Right for the comparison model only (McNemar's c). */
  comparisonOnly: number;
  bothWrong: number;
  /** Exact McNemar, two-sided. */
  pValue: number;
  verdict: Verdict;
}

export interface PairedComparison extends PairedCounts {
  candidate: string;
  comparison: string;
  candidateAccuracy: Proportion;
  comparisonAccuracy: Proportion;
  /** The verdict in one line, e.g. "better at n = 72: ft:… 91.7% vs gpt-4o-mini 41.7% of fields right (…)". */
  line: string;
  fields: Array<PairedCounts & { field: string; delta: number | null }>;
}

export const ALPHA = 0.05;

function counts(pairs: Array<[boolean, boolean]>, alpha: number): PairedCounts {
  let bothRight = 0;
  let candidateOnly = 0;
  let comparisonOnly = 0;
  let bothWrong = 0;
  for (const [a, b] of pairs) {
    if (a && b) bothRight++;
    else if (a) candidateOnly++;
    else if (b) comparisonOnly++;
    else bothWrong++;
  }
  const pValue = mcnemarExact(candidateOnly, comparisonOnly);
  const verdict: Verdict =
    pValue >= alpha ? 'no significant difference' : candidateOnly > comparisonOnly ? 'better' : 'worse';
  return { n: pairs.length, bothRight, candidateOnly, comparisonOnly, bothWrong, pValue, verdict };
}

const percent = (p: Proportion) => (p.rate === null ? '—' : `${(p.rate * 100).toFixed(1)}%`);

export function formatP(p: number): string {
  if (p < 0.001) return 'p < 0.001';
  return `p = ${p < 0.01 ? p.toFixed(4) : p.toFixed(3)}`;
}

/**
 * The candidate against one comparison model on the (example, field) pairs both were scored on: exact
 * McNemar on the discordant pairs, significant below `alpha` (0.05).
 */
export function compareModels(
  fieldRows: readonly FieldRow[],
  candidate: string,
  comparison: string,
  alpha = ALPHA,
): PairedComparison {
  const theirs = new Map<string, boolean>();
  for (const r of fieldRows) if (r.model === comparison) theirs.set(pairKey(r), r.outcome === 'correct');
  const all: Array<[boolean, boolean]> = [];
  const byField = new Map<string, Array<[boolean, boolean]>>();
  for (const r of fieldRows) {
    if (r.model !== candidate) continue;
    const other = theirs.get(pairKey(r));
    if (other === undefined) continue;
    const pair: [boolean, boolean] = [r.outcome === 'correct', other];
    all.push(pair);
    const list = byField.get(r.field);
    if (list) list.push(pair);
    else byField.set(r.field, [pair]);
  }
  const total = counts(all, alpha);
  const candidateAccuracy = proportion(total.bothRight + total.candidateOnly, total.n);
  const comparisonAccuracy = proportion(total.bothRight + total.comparisonOnly, total.n);
  const line =
    `${total.verdict} at n = ${total.n}: ${candidate} ${percent(candidateAccuracy)} vs ${comparison} ` +
    `${percent(comparisonAccuracy)} of fields right (${total.candidateOnly} right only for the first, ` +
    `${total.comparisonOnly} only for the second; exact McNemar ${formatP(total.pValue)})`;
  return {
    candidate,
    comparison,
    ...total,
    candidateAccuracy,
    comparisonAccuracy,
    line,
    fields: [...byField].map(([field, pairs]) => {
      const c = counts(pairs, alpha);
      return { field, ...c, delta: c.n === 0 ? null : (c.candidateOnly - c.comparisonOnly) / c.n };
    }),
  };
}

const pairKey = (r: FieldRow) => `${r.exampleId}\u0000${r.field}`;
