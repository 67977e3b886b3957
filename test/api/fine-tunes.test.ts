import { buildApi, profileChatProvider } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { endDeployment, markDeploymentActive, startDeployment } from '@tuneline/db';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import type { KyselyPlugin } from 'kysely';
import { describe, expect } from 'vitest';
import { injectJson } from '../support/api-app.ts';
import { makeDataset, makeFineTune } from './fixtures.ts';
import { type ApiContext, it } from './support.ts';

/** The fine-tune routes: detail, cancel, activation. */

let { t, a, b, call, sim, redis, prefix } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, a, b, call, sim, redis, prefix } = api);
});

describe('fine-tunes and activation', () => {
  it('shows own fine-tunes with events and checkpoints; others are 404', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const done = await makeFineTune(t.db, a.id, ds, { withHistory: true });
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'));
    const list = await call('GET', '/v1/fine-tunes', a.key);
    const ids = list.json.data.map((f: { id: string }) => f.id);
    expect(ids).toContain(done);
    expect(ids).not.toContain(theirs);
    const one = await call('GET', `/v1/fine-tunes/${done}`, a.key);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({
      status: 'succeeded',
      trainedTokens: '72000',
      creditsCharged: '216',
      creditsReserved: '260',
    });
    expect(one.json.events).toHaveLength(3);
    expect(
      one.json.checkpoints.map((c: { metrics: { train_loss: number } }) => c.metrics.train_loss),
    ).toEqual([1.9, 1.2, 0.7, 0.45]);
    expect((await call('GET', `/v1/fine-tunes/${theirs}`, a.key)).status).toBe(404);
  });

  it('cancels a running fine-tune; finished is 409; another license’s is 404 and unchanged', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const running = await makeFineTune(t.db, a.id, ds, { status: 'running' });
    const res = await call('POST', `/v1/fine-tunes/${running}/cancel`, a.key);
    expect(res.status).toBe(202);
    expect(res.json.cancelRequested).toBe(true);
    const poll = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `finetune-poll-${running}-cancel`)
      .execute();
    expect(poll).toHaveLength(1);
    const finished = await makeFineTune(t.db, a.id, ds, { status: 'failed' });
    expect((await call('POST', `/v1/fine-tunes/${finished}/cancel`, a.key)).status).toBe(409);
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'), {
      status: 'running',
    });
    expect((await call('POST', `/v1/fine-tunes/${theirs}/cancel`, a.key)).status).toBe(404);
    const row = await t.db
      .selectFrom('fine_tunes')
      .select('cancel_requested_at')
      .where('id', '=', theirs)
      .executeTakeFirstOrThrow();
    expect(row.cancel_requested_at).toBeNull();
  });

  it('activates and deactivates only available models of one’s own license', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const ok = await makeFineTune(t.db, a.id, ds);
    const running = await makeFineTune(t.db, a.id, ds, { status: 'running' });
    const unsettled = await makeFineTune(t.db, a.id, ds, { available: false });
    const theirs = await makeFineTune(t.db, b.id, await makeDataset(t.db, b.id, 'uploaded'));

    const on = await call('POST', `/v1/fine-tunes/${ok}/activate`, a.key);
    expect(on.status).toBe(200);
    expect(on.json.active).toBe(true);
    const active = await call('GET', '/v1/models/active', a.key);
    expect(active.json.data.map((m: { fineTuneId: string }) => m.fineTuneId)).toContain(ok);

    expect((await call('POST', `/v1/fine-tunes/${running}/activate`, a.key)).status).toBe(409);
    expect((await call('POST', `/v1/fine-tunes/${unsettled}/activate`, a.key)).status).toBe(409);
    expect((await call('POST', `/v1/fine-tunes/${theirs}/activate`, a.key)).status).toBe(404);
    expect((await call('POST', `/v1/fine-tunes/${theirs}/deactivate`, a.key)).status).toBe(404);
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select(['id', 'active'])
      .where('id', 'in', [running, unsettled, theirs])
      .execute();
    expect(rows.every((r) => r.active === false)).toBe(true);
    const bActive = await call('GET', '/v1/models/active', b.key);
    expect(bActive.json.data).toEqual([]);

    const off = await call('POST', `/v1/fine-tunes/${ok}/deactivate`, a.key);
    expect(off.json.active).toBe(false);
    expect(
      (await call('GET', '/v1/models/active', a.key)).json.data.map(
        (m: { fineTuneId: string }) => m.fineTuneId,
      ),
    ).not.toContain(ok);
    expect((await call('POST', '/v1/fine-tunes/nope/activate', a.key)).status).toBe(400);
  });

  it('shows a fine-tune and its deployment from one moment: never active next to an ended deployment', async () => {
    const ds = await makeDataset(t.db, a.id, 'uploaded');
    const id = await makeFineTune(t.db, a.id, ds);
    await t.db.updateTable('fine_tunes').set({ provider: 'azure' }).where('id', '=', id).execute();
    const started = await startDeployment(t.db, {
      fineTuneId: id,
      licenseId: a.id,
      provider: 'azure',
      name: `tl-${id}`,
      creditsPerHour: 1_700n,
      now: new Date(),
    });
    if (started.outcome !== 'started') throw new Error(`deployment not started: ${started.outcome}`);
    await markDeploymentActive(t.db, started.deployment.id, new Date());

    // An app whose database, right after the fine-tune's row is read, lets the sweep end that deployment
    // (and the model's activation, in one transaction) before the view reads anything else.
    let ended = false;
    const sweepBetweenReads: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult({ result }) {
        const row = result.rows[0] as { id?: unknown; available?: unknown } | undefined;
        if (!ended && row?.id === id && 'available' in row) {
          ended = true;
          await endDeployment(t.db, {
            id: started.deployment.id,
            from: ['active'],
            state: 'deleted',
            reason: 'deleted by the provider',
            now: new Date(),
          });
        }
        return result;
      },
    };
    const profile = createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'simulator',
        SIMULATOR_URL: sim.url,
        SIMULATOR_API_KEY: sim.apiKey,
      }),
    );
    const app = await buildApi({
      db: t.db.withPlugin(sweepBetweenReads),
      redis,
      queuePrefix: prefix,
      catalogue: defaultCatalogue,
      provider: profileChatProvider(profile),
    });
    try {
      const view = (await injectJson(app, 'GET', `/v1/fine-tunes/${id}`, a.key)).json;
      expect(ended).toBe(true);
      // Before the sweep or after it, but one of the two, never a mix.
      const before = { active: true, activation: 'active', deployment: { state: 'active' } };
      const after = { active: false, activation: 'inactive', deployment: { state: 'deleted' } };
      const seen = {
        active: view.active,
        activation: view.activation,
        deployment: { state: view.deployment?.state },
      };
      expect([before, after]).toContainEqual(seen);
      // The next look sees the sweep's outcome whole.
      expect((await injectJson(app, 'GET', `/v1/fine-tunes/${id}`, a.key)).json).toMatchObject(after);
    } finally {
      await app.close();
    }
  });
});
