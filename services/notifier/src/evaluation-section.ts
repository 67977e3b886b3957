import { type Executor, type FineTuneRecord, findDataset, getEvaluationRunByFineTune } from '@tuneline/db';
import {
  type EvaluationSummary,
  evaluationTable,
  formatDelta,
  formatEvaluationTable,
  formatInterval,
  formatRate,
} from '@tuneline/evaluation';

/**
 * The evaluation part of a succeeded fine-tune's outcome e-mail: the per-field table (base, champion,
 * fine-tuned, deltas) and the verdicts, or why there is none. Text and HTML.
 */
export interface EvaluationSection {
  text: string;
  html: string;
}

export async function evaluationSection(
  db: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'status' | 'datasetId'>,
): Promise<EvaluationSection | null> {
  if (fineTune.status !== 'succeeded') return null;
  const run = await getEvaluationRunByFineTune(db, fineTune.id);
  if (!run) {
    const dataset = await findDataset(db, fineTune.datasetId);
    const why =
      dataset && dataset.testExamples === 0
        ? 'the dataset has no testing file (testPercent 0)'
        : 'evaluation was turned off for this request (evaluate: false)';
    return note(`No evaluation: ${why}.`);
  }
  if (run.status === 'succeeded' && run.summary) return tableSection(run.summary as EvaluationSummary);
  if (run.status === 'failed') return note(`Evaluation not available: ${run.reason ?? 'it failed'}.`);
  return note('Evaluation not available: it has not finished.');
}

function note(text: string): EvaluationSection {
  return {
    text: `Evaluation on the testing file\n\n${text}`,
    html: `<h2>Evaluation</h2><p>${escapeHtml(text)}</p>`,
  };
}

export function tableSection(summary: EvaluationSummary): EvaluationSection {
  const table = evaluationTable(summary);
  const text = `Evaluation on the testing file (accuracy per field, 95% Wilson interval)\n\n${formatEvaluationTable(summary)}`;
  const head = ['Field', 'Base', ...(table.hasChampion ? ['Champion'] : []), 'Fine-tuned', 'Δ base'];
  if (table.hasChampion) head.push('Δ champion');
  const rows = table.rows.map((r) => {
    const cells = [
      `<th scope="row" style="text-align:left">${escapeHtml(r.label)}</th>`,
      td(formatRate(r.base)),
    ];
    if (table.hasChampion) cells.push(td(formatRate(r.champion)));
    cells.push(
      td(`${formatRate(r.fineTuned)} ${formatInterval(r.fineTuned)}`.trim()),
      td(formatDelta(r.deltaBase)),
    );
    if (table.hasChampion) cells.push(td(formatDelta(r.deltaChampion)));
    return `<tr>${cells.join('')}</tr>`;
  });
  const verdicts = [
    `<li>Against the base model (${escapeHtml(summary.models.base)}): ${escapeHtml(table.verdictBase ?? '—')}</li>`,
    ...(table.hasChampion
      ? [
          `<li>Against the champion (${escapeHtml(summary.models.champion ?? '')}): ${escapeHtml(table.verdictChampion ?? '—')}</li>`,
        ]
      : []),
  ];
  const html =
    `<h2>Evaluation</h2><p>${summary.examples} testing examples, each asked of every model. ` +
    `Accuracy per field with its 95% Wilson interval.</p>` +
    `<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">` +
    `<thead><tr>${head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table><ul>${verdicts.join('')}</ul>`;
  return { text, html };
}

const td = (v: string) => `<td style="text-align:right">${escapeHtml(v)}</td>`;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
