import {
  type Executor,
  type FineTuneRecord,
  findVersionOfFineTune,
  getEvaluationRunByFineTune,
} from '@tuneline/db';
import { type EvaluationSection, escapeHtml } from './evaluation-section.ts';

/**
 * The promotion part of a training-profile version's outcome e-mail (issue 22.4): what the promotion
 * rule decided, why, and which model the alias serves now. Null for a fine-tune that is no profile
 * version. Read when the e-mail is built, from the decision committed with the evaluation's end.
 */
export async function promotionSection(
  db: Executor,
  fineTune: Pick<FineTuneRecord, 'id' | 'fineTunedModel'>,
): Promise<EvaluationSection | null> {
  const version = await findVersionOfFineTune(db, fineTune.id);
  if (!version) return null;
  const settings = version.settings as { alias?: string; policy?: { promotion?: string } };
  const alias = settings.alias ?? null;
  const rule = version.promotion?.rule ?? settings.policy?.promotion ?? 'manual';
  const run = await getEvaluationRunByFineTune(db, fineTune.id);
  const champion = run?.models?.champion ?? null;
  const model = fineTune.fineTunedModel ?? fineTune.id;
  const path = `/v1/training-profiles/${version.profileName}/versions/${version.version}/promote`;
  const p = version.promotion;
  let decision: string;
  if (!p) {
    decision = `not decided (the version was not evaluated): promote it by hand with POST ${path}`;
  } else if (p.decision === 'promoted') {
    decision = p.alias
      ? `promoted: the alias "${p.alias}" now serves ${model}${champion ? ` (before: ${champion})` : ''}`
      : `promoted: ${model} is active (the profile names no alias)`;
  } else if (p.decision === 'kept') {
    decision = champion
      ? `kept the champion: ${alias ? `the alias "${alias}" still serves` : 'the license keeps'} ${champion}`
      : 'not promoted: nothing is served from this profile yet';
  } else {
    decision = `waiting for you: promote it with POST ${path} or the hub's Promote button`;
  }
  const lines = [
    `Promotion (training profile "${version.profileName}", version ${version.version}, rule ${rule})`,
    '',
    `Decision: ${decision}`,
    ...(p ? [`Reason:   ${p.reason}`] : []),
  ];
  const html =
    `<h2>Promotion</h2><p>Training profile <b>${escapeHtml(version.profileName)}</b>, version ${version.version}, ` +
    `rule <code>${escapeHtml(rule)}</code>.</p><p data-promotion="${escapeHtml(p?.decision ?? 'none')}">` +
    `${escapeHtml(decision)}</p>${p ? `<p>${escapeHtml(p.reason)}</p>` : ''}`;
  return { text: lines.join('\n'), html };
}

/** The evaluation section followed by the promotion section (either may be missing). */
export function withPromotion(
  evaluation: EvaluationSection | null,
  promotion: EvaluationSection | null,
): EvaluationSection | null {
  if (!evaluation || !promotion) return evaluation ?? promotion;
  return { text: `${evaluation.text}\n\n${promotion.text}`, html: `${evaluation.html}${promotion.html}` };
}
