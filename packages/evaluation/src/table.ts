// A stored evaluation's summary and the per-field table every surface shows (e-mail, API, hub, demo):
// base, champion and fine-tuned accuracy per field, the fine-tuned model's deltas and the verdicts.
import type { EvaluationReport } from './evaluation.ts';
import type { ExampleRow, FieldOutcome, FieldRow } from './score.ts';
import { compareModels, formatP, type Proportion, summarise } from './summary.ts';

/** The models of an evaluation by role. */
export interface EvaluatedModels {
  fine_tuned: string;
  base: string;
  champion: string | null;
}

/** What an evaluation run stores when it succeeds. */
export interface EvaluationSummary {
  models: EvaluatedModels;
  /** Examples evaluated (each asked of every model). */
  examples: number;
  report: EvaluationReport;
}

/** A stored answer as the summary needs it. */
export interface StoredAnswer {
  exampleId: string;
  model: string;
  answer: string;
  validJson: boolean;
  extraKeys: string[];
  fields: Array<{ field: string; outcome: string; expected: unknown; answered?: unknown }>;
}

/** Summary of stored answers: every model's figures and the fine-tuned model against the others. */
export function summariseStoredAnswers(
  models: EvaluatedModels,
  answers: readonly StoredAnswer[],
): EvaluationSummary {
  const exampleRows: ExampleRow[] = [];
  const fieldRows: FieldRow[] = [];
  const ids = new Set<string>();
  for (const a of answers) {
    ids.add(a.exampleId);
    exampleRows.push({
      exampleId: a.exampleId,
      model: a.model,
      answer: a.answer,
      validJson: a.validJson,
      extraKeys: a.extraKeys,
    });
    // The summary reads each row's example, model, field and outcome (not the values): no copy of those.
    for (const f of a.fields) {
      fieldRows.push({
        exampleId: a.exampleId,
        model: a.model,
        field: f.field,
        outcome: f.outcome as FieldOutcome,
        expected: null,
      });
    }
  }
  const others = [models.base, ...(models.champion ? [models.champion] : [])];
  return {
    models,
    examples: ids.size,
    report: {
      models: summarise(exampleRows, fieldRows),
      comparisons: others.map((o) => compareModels(fieldRows, models.fine_tuned, o)),
    },
  };
}

export interface TableRow {
  /** A field name, or `all fields`, `all fields right (per document)`, `valid JSON`. */
  label: string;
  base: Proportion | null;
  champion: Proportion | null;
  fineTuned: Proportion | null;
  /** Fine-tuned rate minus base rate, minus champion rate (null where either is missing). */
  deltaBase: number | null;
  deltaChampion: number | null;
}

export interface EvaluationTable {
  hasChampion: boolean;
  rows: TableRow[];
  /** One line per comparison: "better at n = 72: …". */
  verdicts: string[];
  /** The verdict against the base model and against the champion. */
  verdictBase: string | null;
  verdictChampion: string | null;
}

const delta = (a: Proportion | null, b: Proportion | null) =>
  a?.rate == null || b?.rate == null ? null : a.rate - b.rate;

/** The per-field table of a summary, fields in the fine-tuned model's order, then the overall rows. */
export function evaluationTable(summary: EvaluationSummary): EvaluationTable {
  const byModel = new Map(summary.report.models.map((m) => [m.model, m]));
  const ft = byModel.get(summary.models.fine_tuned);
  const base = byModel.get(summary.models.base);
  const champion = summary.models.champion ? byModel.get(summary.models.champion) : undefined;
  const fieldOf = (m: typeof ft, name: string) => m?.fields.find((f) => f.field === name)?.accuracy ?? null;
  const names = [
    ...new Set([ft, base, champion].flatMap((m) => (m ? m.fields.map((f) => f.field) : [])).filter(Boolean)),
  ];
  const row = (label: string, pick: (m: NonNullable<typeof ft>) => Proportion | null): TableRow => {
    const b = base ? pick(base) : null;
    const c = champion ? pick(champion) : null;
    const f = ft ? pick(ft) : null;
    return { label, base: b, champion: c, fineTuned: f, deltaBase: delta(f, b), deltaChampion: delta(f, c) };
  };
  const rows = [
    ...names.map((name) => row(name, (m) => fieldOf(m, name))),
    row('all fields', (m) => m.fieldAccuracy),
    row('documents all right', (m) => m.allFieldsRight),
    row('valid JSON', (m) => m.validJson),
  ];
  const against = (model: string | null) =>
    model ? (summary.report.comparisons.find((c) => c.comparison === model) ?? null) : null;
  const verdictOf = (model: string | null) => {
    const c = against(model);
    return c ? `${c.verdict} at n = ${c.n} (exact McNemar ${formatP(c.pValue)})` : null;
  };
  return {
    hasChampion: champion !== undefined,
    rows,
    verdicts: summary.report.comparisons.map((c) => c.line),
    verdictBase: verdictOf(summary.models.base),
    verdictChampion: verdictOf(summary.models.champion),
  };
}

export const formatRate = (p: Proportion | null): string =>
  p?.rate == null ? '—' : `${(p.rate * 100).toFixed(1)}%`;

export const formatInterval = (p: Proportion | null): string =>
  p?.rate == null ? '' : `[${(p.low * 100).toFixed(1)}, ${(p.high * 100).toFixed(1)}]`;

export const formatDelta = (d: number | null): string =>
  d === null ? '—' : `${d >= 0 ? '+' : '−'}${Math.abs(d * 100).toFixed(1)} pt`;

/** The table as monospaced text (e-mail, demo, CLI). */
export function formatEvaluationTable(summary: EvaluationSummary): string {
  const table = evaluationTable(summary);
  const head = ['field', 'base', ...(table.hasChampion ? ['champion'] : []), 'fine-tuned', 'Δ base'];
  if (table.hasChampion) head.push('Δ champion');
  const body = table.rows.map((r) => {
    const cells = [r.label, formatRate(r.base)];
    if (table.hasChampion) cells.push(formatRate(r.champion));
    cells.push(`${formatRate(r.fineTuned)} ${formatInterval(r.fineTuned)}`.trim(), formatDelta(r.deltaBase));
    if (table.hasChampion) cells.push(formatDelta(r.deltaChampion));
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const lines = [
    `Models: fine-tuned ${summary.models.fine_tuned}; base ${summary.models.base}; ` +
      `champion ${summary.models.champion ?? 'none (no active model for this configuration)'}`,
    `Examples evaluated: ${summary.examples}`,
    '',
    line(head),
    ...body.map(line),
    '',
    `Verdict against the base model: ${table.verdictBase ?? '—'}`,
  ];
  if (table.hasChampion) lines.push(`Verdict against the champion: ${table.verdictChampion ?? '—'}`);
  return lines.join('\n');
}
