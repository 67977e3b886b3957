// Champion against challenger (issue 22.4): whether a re-trained model takes over its profile's alias,
// decided from the stored evaluation alone. Pure: the evaluator applies the answer, the e-mail, the API
// and the hub show its reason.
import type { PairedComparison, Verdict } from './summary.ts';
import type { EvaluationSummary } from './table.ts';

/** A training profile's promotion policy (`policy.promotion`). */
export type PromotionRule = 'if-better' | 'if-not-worse' | 'manual';

export interface PromotionInput {
  rule: PromotionRule;
  /** The challenger's evaluation: its summary (models by role, comparisons), or why it failed. */
  evaluation: { status: 'succeeded'; summary: EvaluationSummary } | { status: 'failed'; reason: string };
}

/**
 * `promote`: the alias moves to the challenger. `keep`: the champion stays (or, with none, nothing is
 * served yet). `manual`: the rule leaves it to a person.
 */
export interface PromotionDecision {
  action: 'promote' | 'keep' | 'manual';
  /** One sentence the e-mail, the API and the hub show. */
  reason: string;
  /** What the rule was judged against: the champion, or the base model when there is no champion. */
  against: 'champion' | 'base' | null;
  /** The verdict against that model (exact McNemar at 0.05), when there was one. */
  verdict: Verdict | null;
}

const comparisonWith = (summary: EvaluationSummary, model: string | null): PairedComparison | undefined =>
  model === null ? undefined : summary.report.comparisons.find((c) => c.comparison === model);

/**
 * The rule, over the evaluation's exact McNemar verdicts (docs/EVALUATION.md):
 *
 * - `manual`: never moves by itself;
 * - a failed evaluation, or one without paired outcomes against a compared model, promotes nothing;
 * - a challenger significantly worse than its base model is never promoted;
 * - against the champion (the alias's model when the evaluation started): `if-better` needs the verdict
 *   `better`, `if-not-worse` anything but `worse`;
 * - with no champion (a first version), the same rule is judged against the base model: `if-not-worse`
 *   promotes a model that evaluated without being worse than its base, `if-better` one that beat it.
 */
export function decidePromotion(input: PromotionInput): PromotionDecision {
  const { rule, evaluation } = input;
  if (rule === 'manual') {
    const what =
      evaluation.status === 'succeeded'
        ? 'the evaluation is in the table'
        : `the evaluation failed: ${evaluation.reason}`;
    return {
      action: 'manual',
      reason: `promotion is manual (${what}); promote the version by hand to serve it`,
      against: null,
      verdict: null,
    };
  }
  if (evaluation.status === 'failed') {
    return {
      action: 'keep',
      reason: `not promoted: the evaluation failed (${evaluation.reason})`,
      against: null,
      verdict: null,
    };
  }
  const { summary } = evaluation;
  const base = comparisonWith(summary, summary.models.base);
  if (!base || base.n === 0) {
    return {
      action: 'keep',
      reason: 'not promoted: the evaluation has no field outcome paired with the base model',
      against: null,
      verdict: null,
    };
  }
  if (base.verdict === 'worse') {
    return {
      action: 'keep',
      reason: `not promoted: significantly worse than the base model (${base.line})`,
      against: 'base',
      verdict: base.verdict,
    };
  }
  const champion = comparisonWith(summary, summary.models.champion);
  if (summary.models.champion !== null && (!champion || champion.n === 0)) {
    return {
      action: 'keep',
      reason: 'not promoted: the evaluation has no field outcome paired with the champion',
      against: null,
      verdict: null,
    };
  }
  const judged = champion ?? base;
  const against = champion ? 'champion' : 'base';
  const holds = rule === 'if-better' ? judged.verdict === 'better' : judged.verdict !== 'worse';
  const name = champion ? 'the champion' : 'the base model (no champion yet)';
  const wanted =
    rule === 'if-better' ? `significantly better than ${name}` : `not significantly worse than ${name}`;
  return {
    action: holds ? 'promote' : 'keep',
    reason: `${holds ? 'promoted' : 'not promoted'} (${rule}: ${wanted}): ${judged.line}`,
    against,
    verdict: judged.verdict,
  };
}
