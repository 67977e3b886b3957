import { findAlias, getFineTune, recordVersionPromotion } from '@tuneline/db';
import { describe, expect } from 'vitest';
import { type AnyJson, it } from '../api/support.ts';
import { saveProfile, seedTrainedVersion } from './support.ts';

// Promotion by hand (issue 22.4): one API call serves a version's model under the profile's alias,
// recorded; the profile's versions and a fine-tune's evaluation view say what became of each.

const PROMOTE = (version: number | string) => `/v1/training-profiles/invoices/versions/${version}/promote`;

describe('promoting a training-profile version by hand', () => {
  it('serves the version under the alias, once; another version moves it; the views say so', async ({
    api,
    db,
  }) => {
    const { a, b, call } = api;
    const profile = await saveProfile(db, a.id, {
      alias: 'invoices',
      policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'manual' },
    });
    const v1 = await seedTrainedVersion(db, profile, 1, {
      model: 'ft:gpt-4o-mini-2024-07-18:tuneline:v1:aaa',
    });
    const v2 = await seedTrainedVersion(db, profile, 2, {
      model: 'ft:gpt-4o-mini-2024-07-18:tuneline:v2:bbb',
    });
    // The policy left v2 to a person (as the evaluator records a manual rule).
    await recordVersionPromotion(db, {
      profileId: profile.id,
      version: 2,
      decision: 'manual',
      rule: 'manual',
      reason: 'promotion is manual (the evaluation is in the table); promote the version by hand to serve it',
      actor: 'policy:invoices',
      alias: null,
      fineTuneId: v2.fineTuneId,
      championFineTuneId: null,
      undecidedOnly: true,
    });

    const before = await call('GET', '/v1/training-profiles/invoices', a.key);
    expect(
      before.json.versions.map((v: AnyJson) => [
        v.version,
        v.fineTuneId,
        v.serving,
        v.promotion?.decision ?? null,
      ]),
    ).toEqual([
      [2, v2.fineTuneId, false, 'manual'],
      [1, v1.fineTuneId, false, null],
    ]);

    const first = await call('POST', PROMOTE(1), a.key);
    expect(first.status).toBe(200);
    expect(first.json.changed).toBe(true);
    expect(first.json.alias).toEqual({
      name: 'invoices',
      fineTuneId: v1.fineTuneId,
      model: 'ft:gpt-4o-mini-2024-07-18:tuneline:v1:aaa',
    });
    expect(first.json.version).toMatchObject({
      version: 1,
      serving: true,
      promotion: {
        decision: 'promoted',
        rule: null,
        reason: 'promoted by hand',
        alias: 'invoices',
        championFineTuneId: null,
      },
    });
    expect(first.json.version.promotion.actor).toMatch(/^key:tl_/);
    expect((await getFineTune(db, v1.fineTuneId))?.active).toBe(true);

    // The same call again: nothing moves, nothing is recorded twice.
    const again = await call('POST', PROMOTE(1), a.key);
    expect(again.json.changed).toBe(false);
    expect(again.json.version.promotion.at).toBe(first.json.version.promotion.at);

    // v2 takes the alias over (from v1, recorded), keeping what the policy had said.
    const second = await call('POST', PROMOTE(2), a.key);
    expect(second.json.version.promotion).toMatchObject({
      decision: 'promoted',
      championFineTuneId: v1.fineTuneId,
      reason:
        'promoted by hand (the policy had decided: promotion is manual (the evaluation is in the table); promote the version by hand to serve it)',
    });
    const alias = await findAlias(db, a.id, 'invoices');
    expect(alias?.fineTuneId).toBe(v2.fineTuneId);
    expect(
      alias?.history.map((h) => [h.fromFineTuneId, h.toFineTuneId, h.actor.startsWith('key:tl_')]),
    ).toEqual([
      [v1.fineTuneId, v2.fineTuneId, true],
      [null, v1.fineTuneId, true],
    ]);
    const after = await call('GET', '/v1/training-profiles/invoices', a.key);
    expect(after.json.versions.map((v: AnyJson) => [v.version, v.serving])).toEqual([
      [2, true],
      [1, false],
    ]);

    // The fine-tune's evaluation view carries the version, its decision and where to promote it.
    const evaluation = await call('GET', `/v1/fine-tunes/${v1.fineTuneId}/evaluation`, a.key);
    expect(evaluation.json.profileVersion).toMatchObject({
      profile: 'invoices',
      version: 1,
      alias: 'invoices',
      serving: false,
      promotion: { decision: 'promoted' },
      promotePath: PROMOTE(1),
    });

    // Promoting v1 again rolls the alias back to it.
    expect((await call('POST', PROMOTE(1), a.key)).json.alias.fineTuneId).toBe(v1.fineTuneId);

    // Errors name what is wrong.
    const bad = await call('POST', PROMOTE('one'), a.key);
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields.map((f: AnyJson) => f.field)).toEqual(['version']);
    expect((await call('POST', PROMOTE(9), a.key)).status).toBe(404);
    expect((await call('POST', PROMOTE(1), b.key)).status).toBe(404);
    await seedTrainedVersion(db, profile, 3, { status: 'running' });
    const untrained = await call('POST', PROMOTE(3), a.key);
    expect(untrained.status).toBe(409);
    expect(untrained.json.error.message).toBe(
      'version 3 has no available model yet (its fine-tune is not trained and settled)',
    );
  });

  it('a profile without an alias: promoting activates the model, and says no alias moved', async ({
    api,
    db,
  }) => {
    const { a, call } = api;
    const profile = await saveProfile(db, a.id, {
      name: 'receipts',
      policy: { minNewDocuments: 50, minIntervalHours: 0, promotion: 'manual' },
    });
    const v1 = await seedTrainedVersion(db, profile, 1);
    const res = await call('POST', '/v1/training-profiles/receipts/versions/1/promote', a.key);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ changed: true, alias: null });
    expect(res.json.version).toMatchObject({
      serving: false,
      promotion: { decision: 'promoted', alias: null },
    });
    expect((await getFineTune(db, v1.fineTuneId))?.active).toBe(true);
    const again = await call('POST', '/v1/training-profiles/receipts/versions/1/promote', a.key);
    expect(again.json.changed).toBe(false);
  });
});
