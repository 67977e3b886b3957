import { type Executor, type FineTuneRecord, findMigration, migrationOfFineTune } from '@tuneline/db';
import { type EvaluationSection, escapeHtml } from './evaluation-section.ts';

/**
 * The migration part of the outcome e-mail of a fine-tune a migration trained (issue 21.4): from which
 * model to which target, the rule, and what it decided and why, under the evaluation table (whose
 * champion column is the old model). Null for any other fine-tune. Read when the e-mail is built, from
 * the decision committed with the outcome.
 */
export async function migrationSection(
  db: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'licenseId' | 'fineTunedModel'>,
): Promise<EvaluationSection | null> {
  const found = await migrationOfFineTune(db, fineTune.id);
  const m = found ? await findMigration(db, fineTune.licenseId, found.id) : undefined;
  if (!m) return null;
  const from = `${m.from.model ?? m.from.fineTuneId} (${m.from.baseModel} at ${m.from.provider ?? 'the default provider'})`;
  const to = `${m.target.baseModel} at ${m.target.provider}`;
  const model = fineTune.fineTunedModel ?? fineTune.id;
  let decision: string;
  if (m.status === 'deploying')
    decision = `promoted: deploying ${model} at ${m.target.provider}; the old model's aliases move to it once it serves`;
  else if (m.decision === 'promoted')
    decision = m.aliases.length
      ? `promoted: ${m.aliases.map((a) => `"${a.name}"`).join(', ')} now serve${m.aliases.length === 1 ? 's' : ''} ${model} (before: ${m.from.model})`
      : `promoted: ${model} is active`;
  else if (m.decision === 'kept') decision = `kept: the old model's aliases still serve ${m.from.model}`;
  else if (m.status === 'failed') decision = 'failed: no new model';
  else decision = 'not decided yet';
  const lines = [
    `Migration ${m.id} (rule ${m.promote})`,
    '',
    `From:     ${from}`,
    `To:       ${to}`,
    ...(m.championFineTuneId
      ? [`Champion: the old model, ${m.from.model}, on the same testing documents`]
      : []),
    `Decision: ${decision}`,
    ...(m.reason ? [`Reason:   ${m.reason}`] : []),
  ];
  const html =
    `<h2>Migration</h2><p>From <b>${escapeHtml(from)}</b> to <b>${escapeHtml(to)}</b>, rule ` +
    `<code>${escapeHtml(m.promote)}</code>${m.championFineTuneId ? '; the champion in the table is the old model' : ''}.</p>` +
    `<p data-migration="${escapeHtml(m.decision ?? m.status)}">${escapeHtml(decision)}</p>` +
    `${m.reason ? `<p>${escapeHtml(m.reason)}</p>` : ''}`;
  return { text: lines.join('\n'), html };
}
