// One-call migration (issue 21.4): whether a model re-trained on another base model or provider takes
// over the old model's aliases, decided from its evaluation against the old model (the champion) on the
// same testing documents. Pure, like the promotion rule it reuses.
import { decidePromotion, type PromotionDecision, type PromotionInput } from './promotion.ts';

/**
 * `if-not-worse` (the default) and `if-better`: the promotion rule, judged against the old model;
 * `always`: whatever the evaluation says, once the new model is trained; `never`: the aliases stay.
 */
export const MIGRATION_RULES = ['if-not-worse', 'if-better', 'always', 'never'] as const;
export type MigrationRule = (typeof MIGRATION_RULES)[number];

/** The new model's evaluation, or why there is none (no testing file, evaluation turned off). */
export type MigrationEvaluation = PromotionInput['evaluation'] | { status: 'none'; reason: string };

/**
 * `promote`: the old model's aliases move to the new one. `keep`: they stay, and `reason` says why.
 * Judged like a training profile's promotion (`decidePromotion`): never a model significantly worse
 * than its own base model, and against the old model when it answered (the champion), else the base.
 */
export function decideMigration(rule: MigrationRule, evaluation: MigrationEvaluation): PromotionDecision {
  const verdictLine =
    evaluation.status === 'succeeded'
      ? (evaluation.summary.report.comparisons.find(
          (c) => c.comparison === evaluation.summary.models.champion,
        )?.line ?? null)
      : null;
  if (rule === 'never') {
    return {
      action: 'keep',
      reason: `not promoted (never): the aliases stay on the old model${verdictLine ? `; ${verdictLine}` : ''}`,
      against: null,
      verdict: null,
    };
  }
  if (rule === 'always') {
    const what =
      evaluation.status === 'succeeded'
        ? (verdictLine ?? 'evaluated without the old model')
        : evaluation.status === 'failed'
          ? `the evaluation failed: ${evaluation.reason}`
          : `not evaluated: ${evaluation.reason}`;
    return { action: 'promote', reason: `promoted (always): ${what}`, against: null, verdict: null };
  }
  if (evaluation.status === 'none') {
    return {
      action: 'keep',
      reason: `not promoted (${rule}): the new model was not evaluated (${evaluation.reason})`,
      against: null,
      verdict: null,
    };
  }
  return decidePromotion({ rule, evaluation });
}
