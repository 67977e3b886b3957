import { processClock } from '@tuneline/contracts';
import {
  type Db,
  findAlias,
  findLiveDeployment,
  findVersionOfFineTune,
  getFineTune,
  inTransaction,
  pointAlias,
} from '@tuneline/db';
import { type EvaluationSummary, type StoredAnswer, summariseStoredAnswers } from '@tuneline/evaluation';
import { decideVersionPromotion } from '@tuneline/evaluator';
import { describe, expect } from 'vitest';
import { it } from '../api/support.ts';
import { startSimulatorDeployments } from '../stages/harness.ts';
import { waitFor } from '../support/context.ts';
import { trainSimulatorModel } from '../support/simulator-models.ts';
import { saveProfile, seedTrainedVersion } from './support.ts';

// Champion and challenger (issue 22.4) for a version trained at Azure, which serves a fine-tune only
// once deployed: a promotion, by the policy or by hand, deploys the model first (the poller follows the
// deployment on the simulator's ARM) and the alias moves when it serves, the way a migration's does;
// repeated, it makes one deployment and one alias move. At OpenAI the promotion stays immediate.

const BASE = 'gpt-4o-mini-2024-07-18';
const PROMOTE = (version: number) => `/v1/training-profiles/invoices/versions/${version}/promote`;
const FEE =
  /deploying the new model at azure \(1700 credits per started hour\): the alias moves when it serves$/;

/** An evaluation the `if-not-worse` rule promotes: the model right on all 20 documents, its base on none. */
function winning(model: string): EvaluationSummary {
  const models = { fine_tuned: model, base: BASE, champion: null };
  const answers: StoredAnswer[] = [];
  for (let i = 0; i < 20; i++)
    for (const [m, right] of [
      [model, true],
      [BASE, false],
    ] as const)
      answers.push({
        exampleId: `doc-${i}`,
        model: m,
        answer: '{}',
        validJson: true,
        extraKeys: [],
        fields: [{ field: 'total', outcome: right ? 'correct' : 'wrong', expected: 1, answered: 1 }],
      });
  return summariseStoredAnswers(models, answers);
}

/** The policy's decision for a version's fine-tune, as the evaluator takes it when its evaluation ends. */
const decide = (
  db: Db,
  licenseId: string,
  fineTune: { id: string; model: string },
  champion: string | null,
) =>
  inTransaction(db, (tx) =>
    decideVersionPromotion(tx, { id: fineTune.id, licenseId }, champion, {
      status: 'succeeded',
      summary: winning(fineTune.model),
    }),
  );

async function seedVersion(
  db: Db,
  profile: Awaited<ReturnType<typeof saveProfile>>,
  version: number,
  model: string,
  provider: string | null,
) {
  const { fineTuneId } = await seedTrainedVersion(db, profile, version, { model });
  await db.updateTable('fine_tunes').set({ provider }).where('id', '=', fineTuneId).execute();
  return { id: fineTuneId, model };
}

const deploymentsOf = async (db: Db, fineTuneId: string) =>
  db.selectFrom('model_deployments').selectAll().where('fine_tune_id', '=', fineTuneId).execute();

const movesTo = async (db: Db, licenseId: string, fineTuneId: string) =>
  db
    .selectFrom('model_alias_history')
    .select(['actor', 'from_fine_tune_id'])
    .where('license_id', '=', licenseId)
    .where('to_fine_tune_id', '=', fineTuneId)
    .execute();

/** Once the alias serves `fineTuneId` (its deployment served). */
const servedBy = (db: Db, licenseId: string, fineTuneId: string) =>
  waitFor(
    async () => ((await findAlias(db, licenseId, 'invoices'))?.fineTuneId === fineTuneId ? true : undefined),
    20_000,
    `the alias on ${fineTuneId}`,
  );

/** The version's record once its deployment's outcome left it `kept`. */
const keptOnceDone = (db: Db, fineTuneId: string) =>
  waitFor(
    async () => {
      const p = (await findVersionOfFineTune(db, fineTuneId))?.promotion;
      return p?.decision === 'kept' ? p : undefined;
    },
    20_000,
    `${fineTuneId} kept`,
  );

describe('promoting a version trained at Azure', () => {
  it('policy and by hand: deploys, moves the alias when it serves, once; a hand switch or a failed deployment keeps it', async ({
    api,
    db,
    stages,
  }) => {
    await startSimulatorDeployments(stages, db, api.sim, processClock());
    const lic = api.a.id;
    const [m1, m2, m3] = await Promise.all(
      ['az1', 'az2', 'az3'].map((suffix) => trainSimulatorModel(api.sim, { suffix })),
    );
    const profile = await saveProfile(db, lic, {
      alias: 'invoices',
      policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'if-not-worse' },
    });
    const v1 = await seedVersion(db, profile, 1, m1 as string, 'azure');
    const v2 = await seedVersion(db, profile, 2, m2 as string, 'azure');

    // 1. The policy promotes v1: recorded at once, the deployment started; nothing serves it yet.
    const [first, again] = [await decide(db, lic, v1, null), await decide(db, lic, v1, null)];
    expect(first).toMatchObject({ decision: 'promoted', alias: 'invoices', actor: 'policy:invoices' });
    expect(first?.reason).toMatch(FEE);
    expect(again).toBeUndefined(); // decided once
    expect((await getFineTune(db, v1.id))?.active).toBe(false);
    expect(await findAlias(db, lic, 'invoices')).toBeUndefined();
    expect(await findLiveDeployment(db, v1.id)).toMatchObject({ creditsPerHour: 1_700n });

    // The poller finds it serving: active under its deployment's name, and the alias on it.
    await servedBy(db, lic, v1.id);
    expect(await getFineTune(db, v1.id)).toMatchObject({ active: true, deploymentName: `tl-${v1.id}` });
    expect(await findLiveDeployment(db, v1.id)).toMatchObject({ state: 'active' });
    const v1Record = (await findVersionOfFineTune(db, v1.id))?.promotion;
    expect(v1Record).toMatchObject({ decision: 'promoted', alias: 'invoices' });
    expect(v1Record?.reason).toMatch(/\(1700 credits per started hour\): it serves$/);
    expect(await decide(db, lic, v1, null)).toBeUndefined();
    expect(await deploymentsOf(db, v1.id)).toHaveLength(1);
    expect(await movesTo(db, lic, v1.id)).toEqual([{ actor: 'policy:invoices', from_fine_tune_id: null }]);

    // 2. v2 by hand, twice: one deployment; the alias stays on v1 until v2 serves, then moves once.
    const hand = await api.call('POST', PROMOTE(2), api.a.key);
    expect(hand.status, hand.text).toBe(200);
    expect(hand.json.changed).toBe(true);
    expect(hand.json.alias).toMatchObject({ name: 'invoices', fineTuneId: v1.id });
    expect(hand.json.version.promotion.reason).toMatch(FEE);
    const repeated = await api.call('POST', PROMOTE(2), api.a.key);
    expect(repeated.status).toBe(200);
    expect(repeated.json.changed).toBe(false);
    await servedBy(db, lic, v2.id);
    expect(await findLiveDeployment(db, v2.id)).toMatchObject({ state: 'active' });
    const afterServe = await api.call('POST', PROMOTE(2), api.a.key);
    expect(afterServe.json).toMatchObject({ changed: false, alias: { fineTuneId: v2.id } });
    expect(await deploymentsOf(db, v2.id)).toHaveLength(1);
    const moves = await movesTo(db, lic, v2.id);
    expect(moves).toHaveLength(1);
    expect(moves[0]).toMatchObject({ from_fine_tune_id: v1.id });
    expect(moves[0]?.actor).toMatch(/^key:/);
    const v2Record = (await findVersionOfFineTune(db, v2.id))?.promotion;
    expect(v2Record).toMatchObject({ decision: 'promoted', rule: null, championFineTuneId: v1.id });
    expect(v2Record?.reason).toMatch(/^promoted by hand; .*: it serves$/);

    // 3. v3 promoted by the policy against v2; while it deploys the license points the alias back at
    // v1 by hand: the deployment still serves, but the alias stays where the license put it.
    const v3 = await seedVersion(db, profile, 3, m3 as string, 'azure');
    expect((await decide(db, lic, v3, v2.id))?.reason).toMatch(FEE);
    await pointAlias(db, { licenseId: lic, name: 'invoices', fineTuneId: v1.id, actor: 'key:tl_test' });
    const v3Record = await keptOnceDone(db, v3.id);
    expect(v3Record.reason).toContain(
      `not promoted: the alias "invoices" was switched to fine-tune ${v1.id} while the model was deploying`,
    );
    expect(await findLiveDeployment(db, v3.id)).toMatchObject({ state: 'active' });
    expect((await findAlias(db, lic, 'invoices'))?.fineTuneId).toBe(v1.id);
    expect(await movesTo(db, lic, v3.id)).toEqual([]);

    // 4. A deployment Azure cannot make (the simulator knows no such model) ends before it serves: kept.
    const v4 = await seedVersion(db, profile, 4, `ft:${BASE}:tuneline:gone:zzz`, 'azure');
    expect((await decide(db, lic, v4, v1.id))?.reason).toMatch(FEE);
    const v4Record = await keptOnceDone(db, v4.id);
    expect(v4Record.reason).toMatch(/^not promoted: the model's deployment ended before it served/);
    expect((await findAlias(db, lic, 'invoices'))?.fineTuneId).toBe(v1.id);
    expect(await getFineTune(db, v4.id)).toMatchObject({ active: false });
  });

  it('at OpenAI: the policy and a promotion by hand move the alias at once, no deployment', async ({
    api,
    db,
  }) => {
    const lic = api.b.id;
    const profile = await saveProfile(db, lic, {
      alias: 'invoices',
      policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'if-not-worse' },
    });
    const v1 = await seedVersion(db, profile, 1, `ft:${BASE}:tuneline:oa1:aaa`, null);
    const v2 = await seedVersion(db, profile, 2, `ft:${BASE}:tuneline:oa2:bbb`, 'openai');

    const decided = await decide(db, lic, v1, null);
    expect(decided).toMatchObject({ decision: 'promoted', alias: 'invoices' });
    expect(decided?.reason).not.toMatch(/deploying/);
    expect((await findAlias(db, lic, 'invoices'))?.fineTuneId).toBe(v1.id);
    expect((await getFineTune(db, v1.id))?.active).toBe(true);

    const hand = await api.call('POST', PROMOTE(2), api.b.key);
    expect(hand.json).toMatchObject({ changed: true, alias: { fineTuneId: v2.id } });
    expect((await api.call('POST', PROMOTE(2), api.b.key)).json.changed).toBe(false);
    expect(await movesTo(db, lic, v2.id)).toHaveLength(1);
    expect([...(await deploymentsOf(db, v1.id)), ...(await deploymentsOf(db, v2.id))]).toEqual([]);
  });
});
