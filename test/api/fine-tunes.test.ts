import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from './fixtures.ts';
import { type ApiContext, it } from './support.ts';

/** The fine-tune routes: detail, cancel, activation. */

let { t, a, b, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, a, b, call } = api);
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
});
