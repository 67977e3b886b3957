import { decideMigration, type StoredAnswer, summariseStoredAnswers } from '@tuneline/evaluation';
import { describe, expect, it } from 'vitest';

// The migration rule (issue 21.4): if-not-worse / if-better are the promotion rule against the old model
// (test/evaluation/promotion.test.ts covers its verdicts); always and never decide whatever it says.

const models = { fine_tuned: 'ft:new', base: 'gpt-4.1-mini', champion: 'ft:old' };

/** 30 examples of one field: the new model right on all, the old one on `oldRight`, the base on none. */
function evaluated(oldRight: number) {
  const answers: StoredAnswer[] = [];
  for (let i = 0; i < 30; i++) {
    for (const [model, ok] of [
      [models.fine_tuned, true],
      [models.base, false],
      [models.champion, i < oldRight],
    ] as const) {
      const outcome = ok ? 'correct' : 'wrong';
      answers.push({
        exampleId: `d${i}`,
        model,
        answer: '{}',
        validJson: true,
        extraKeys: [],
        fields: [{ field: 'total', outcome, expected: 1, answered: 1 }],
      });
    }
  }
  return { status: 'succeeded' as const, summary: summariseStoredAnswers(models, answers) };
}

describe('decideMigration', () => {
  it('if-not-worse and if-better judge the new model against the old one', () => {
    expect(decideMigration('if-not-worse', evaluated(30)).action).toBe('promote'); // equal: not worse
    expect(decideMigration('if-better', evaluated(30)).action).toBe('keep');
    expect(decideMigration('if-better', evaluated(10))).toMatchObject({
      action: 'promote',
      against: 'champion',
    });
  });

  it('always promotes and never keeps, each saying what the evaluation found', () => {
    const never = decideMigration('never', evaluated(10));
    expect(never.action).toBe('keep');
    expect(never.reason).toMatch(
      /^not promoted \(never\): the aliases stay on the old model; better at n = 30/,
    );
    expect(decideMigration('always', { status: 'failed', reason: 'time limit' })).toMatchObject({
      action: 'promote',
      reason: 'promoted (always): the evaluation failed: time limit',
    });
    expect(decideMigration('always', evaluated(30)).reason).toMatch(
      /^promoted \(always\): no significant difference/,
    );
  });

  it('without an evaluation, only always promotes', () => {
    const none = { status: 'none' as const, reason: 'no testing file' };
    expect(decideMigration('if-not-worse', none)).toMatchObject({
      action: 'keep',
      reason: 'not promoted (if-not-worse): the new model was not evaluated (no testing file)',
    });
    expect(decideMigration('always', none).action).toBe('promote');
  });
});
