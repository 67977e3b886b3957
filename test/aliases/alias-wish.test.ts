import { afterAll, describe, expect } from 'vitest';
import { makeDataset } from '../api/fixtures.ts';
import { request } from '../api/support.ts';
import { type Gateway, startGateway } from '../gateway/support.ts';
import { it, test } from '../support/fixtures.ts';
import { api } from './support.ts';

/**
 * A request names the alias its model should take (`job.alias`, issue 21.1): recorded on the fine-tune,
 * pointed by the system when the license first activates that model.
 */

let gw: Gateway;
test.beforeAll(async ({ database, prefix }) => {
  gw = await startGateway({ database, prefix });
}, 60_000);
afterAll(async () => {
  await gw?.close();
});

const callA = (method: string, path: string, body?: unknown) =>
  api(gw.gatewayUrl, gw.licenseA.key, method, path, body);

/** The trainer and billing's part, as rows: the job succeeded with `model` and was charged. */
async function trainedAndSettled(fineTuneId: string, model: string) {
  await gw.t.db
    .updateTable('fine_tunes')
    .set({
      status: 'succeeded',
      fine_tuned_model: model,
      trained_tokens: '72000',
      credits_charged: '216',
      finished_at: new Date(),
      settled_at: new Date(),
      available: true,
    })
    .where('id', '=', fineTuneId)
    .execute();
}

describe('the alias a request names', () => {
  it('is part of the strict job options of the typed request', async () => {
    const ok = await callA(
      'POST',
      '/v1/fine-tune-requests',
      request('wish-1', { job: { alias: 'invoices' } }),
    );
    expect(ok.status).toBe(202);
    const bad = await callA(
      'POST',
      '/v1/fine-tune-requests',
      request('wish-2', { job: { alias: 'Not:An-Alias' } }),
    );
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('job.alias');
  });

  it('is recorded on the fine-tune and pointed on its first activation, by the system', async () => {
    const dataset = await makeDataset(gw.t.db, gw.licenseA.id, 'uploaded');
    const created = await callA('POST', `/v1/datasets/${dataset}/fine-tunes`, { alias: 'invoices' });
    expect(created.status).toBe(201);
    expect(created.json.alias).toBe('invoices');
    const id = created.json.id as string;
    // Not available yet: no alias, and activation is refused as before.
    expect((await callA('POST', `/v1/fine-tunes/${id}/activate`)).status).toBe(409);
    expect((await callA('GET', '/v1/aliases/invoices')).status).toBe(404);

    await trainedAndSettled(id, gw.model.replace(/:[^:]+$/, ':wished'));
    expect((await callA('POST', `/v1/fine-tunes/${id}/activate`)).status).toBe(200);
    const alias = await callA('GET', '/v1/aliases/invoices');
    expect(alias.json).toMatchObject({
      fineTuneId: id,
      history: [{ action: 'point', actor: 'system', toFineTuneId: id }],
    });

    // The license moves its alias elsewhere; re-activating the wished model does not undo that.
    await callA('POST', '/v1/aliases/invoices', { fineTuneId: gw.fineTuneId });
    await callA('POST', `/v1/fine-tunes/${id}/deactivate`);
    await callA('POST', `/v1/fine-tunes/${id}/activate`);
    const after = await callA('GET', '/v1/aliases/invoices');
    expect(after.json.fineTuneId).toBe(gw.fineTuneId);
    expect(after.json.history).toHaveLength(2);
  });
});
