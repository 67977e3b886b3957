import {
  decidePromotion,
  type EvaluationSummary,
  type PromotionRule,
  type StoredAnswer,
  summariseStoredAnswers,
} from '@tuneline/evaluation';
import { describe, expect, it } from 'vitest';

// The promotion rule (issue 22.4) over evaluation summaries built as the evaluator builds them: one
// field per example, each model right on the examples listed.

const MODELS = { fine_tuned: 'ft:challenger', base: 'base-model', champion: 'ft:champion' };

/** `n` examples; each model is right on the example indexes its predicate accepts. */
function summary(
  n: number,
  right: {
    fine_tuned: (i: number) => boolean;
    base: (i: number) => boolean;
    champion?: (i: number) => boolean;
  },
): EvaluationSummary {
  const models = { ...MODELS, champion: right.champion ? MODELS.champion : null };
  const answers: StoredAnswer[] = [];
  for (let i = 0; i < n; i++) {
    for (const role of ['fine_tuned', 'base', 'champion'] as const) {
      const model = models[role];
      const ok = right[role];
      if (!model || !ok) continue;
      answers.push({
        exampleId: `doc-${i}`,
        model,
        answer: '{}',
        validJson: true,
        extraKeys: [],
        fields: [{ field: 'total', outcome: ok(i) ? 'correct' : 'wrong', expected: 1, answered: 1 }],
      });
    }
  }
  return summariseStoredAnswers(models, answers);
}

const decide = (rule: PromotionRule, s: EvaluationSummary) =>
  decidePromotion({ rule, evaluation: { status: 'succeeded', summary: s } });

const all = () => true;
const none = () => false;
const firstOf = (k: number) => (i: number) => i < k;

interface PromotionCase {
  rule: PromotionRule;
  when: string;
  right: Parameters<typeof summary>[1];
  decision: Partial<ReturnType<typeof decide>>;
  reason?: RegExp;
}

describe('decidePromotion', () => {
  // 40 examples; each model is right on all of them, none, or the first k.
  const cases: PromotionCase[] = [
    {
      rule: 'if-better',
      when: 'promotes a challenger significantly better than the champion (20 discordant pairs, all one way)',
      right: { fine_tuned: all, base: none, champion: firstOf(20) },
      decision: { action: 'promote', against: 'champion', verdict: 'better' },
      reason: /^promoted \(if-better: significantly better than the champion\): better at n = 40/,
    },
    {
      rule: 'if-better',
      when: 'keeps the champion when the challenger is one right answer ahead (no significant difference)',
      right: { fine_tuned: firstOf(21), base: none, champion: firstOf(20) },
      decision: { action: 'keep', against: 'champion', verdict: 'no significant difference' },
      reason: /^not promoted \(if-better: significantly better than the champion\)/,
    },
    {
      rule: 'if-not-worse',
      when: 'promotes a challenger one right answer behind the champion (no significant difference)',
      right: { fine_tuned: firstOf(30), base: none, champion: firstOf(31) },
      decision: { action: 'promote', against: 'champion', verdict: 'no significant difference' },
    },
    {
      rule: 'if-not-worse',
      when: 'keeps the champion when the challenger is significantly worse',
      right: { fine_tuned: firstOf(10), base: none, champion: all },
      decision: { action: 'keep', against: 'champion', verdict: 'worse' },
    },
  ];
  for (const { rule, when, right, decision, reason } of cases) {
    it(`${rule} ${when}`, () => {
      const d = decide(rule, summary(40, right));
      expect(d).toMatchObject(decision);
      if (reason) expect(d.reason).toMatch(reason);
    });
  }

  it('without a champion (a first version) judges the same rule against the base model', () => {
    const learned = summary(40, { fine_tuned: all, base: firstOf(10) });
    expect(decide('if-not-worse', learned)).toMatchObject({
      action: 'promote',
      against: 'base',
      verdict: 'better',
    });
    expect(decide('if-better', learned)).toMatchObject({ action: 'promote', against: 'base' });
    const even = summary(40, { fine_tuned: firstOf(20), base: firstOf(20) });
    expect(decide('if-not-worse', even)).toMatchObject({
      action: 'promote',
      verdict: 'no significant difference',
    });
    expect(decide('if-better', even)).toMatchObject({ action: 'keep', against: 'base' });
    expect(decide('if-better', even).reason).toContain(
      'significantly better than the base model (no champion yet)',
    );
  });

  it('never promotes a challenger significantly worse than its base model, whatever the champion', () => {
    const d = decide('if-not-worse', summary(40, { fine_tuned: firstOf(5), base: all, champion: none }));
    expect(d).toMatchObject({ action: 'keep', against: 'base', verdict: 'worse' });
    expect(d.reason).toMatch(/^not promoted: significantly worse than the base model/);
  });

  it('manual never moves; a failed or empty evaluation promotes nothing', () => {
    const s = summary(40, { fine_tuned: all, base: none, champion: none });
    expect(decide('manual', s)).toMatchObject({ action: 'manual', against: null });
    expect(decide('manual', s).reason).toBe(
      'promotion is manual (the evaluation is in the table); promote the version by hand to serve it',
    );
    const failed = decidePromotion({
      rule: 'if-not-worse',
      evaluation: { status: 'failed', reason: 'the testing file is missing' },
    });
    expect(failed).toEqual({
      action: 'keep',
      reason: 'not promoted: the evaluation failed (the testing file is missing)',
      against: null,
      verdict: null,
    });
    expect(decide('if-not-worse', summary(0, { fine_tuned: all, base: all })).action).toBe('keep');
    // Champion named but none of its answers paired: nothing to judge against.
    const noPairs = summariseStoredAnswers(MODELS, []);
    expect(decide('if-not-worse', noPairs).action).toBe('keep');
  });
});
