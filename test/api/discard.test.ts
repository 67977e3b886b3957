// Discarding a fine-tune: its model is deleted at the provider (the simulator, through the real SDK),
// the row stays for the ledger and the report, marked discarded, neither available nor active.
import { createApiKey } from '@tuneline/api';
import { createProviderSet, providerEnvSchema } from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { type ApiUnderTest, startApi } from '../support/api-app.ts';
import { it, test } from '../support/fixtures.ts';
import { trainSimulatorModel } from '../support/simulator-models.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

let sim: RunningSimulator;
let api: ApiUnderTest;
let lic: { id: string; key: string };

const post = (url: string, key: string) => api.call('POST', url, key);

test.beforeAll(async ({ db, prefix }) => {
  sim = await startSimulator({ port: 0, seed: 27, speed: 5_000 });
  const set = createProviderSet(
    providerEnvSchema.parse({ SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
  );
  api = await startApi(db, prefix, {
    deleteModel: (f) => set.for(f.provider).deleteModel(f.model, f.providerJobId),
  });
  lic = await makeLicense(db, 'lic-discard');
});

afterAll(async () => {
  await api?.close();
  await sim?.close();
});

describe('discarding a fine-tune', () => {
  it('deletes the model at the provider and keeps the row, marked discarded', async ({ db }) => {
    const model = await trainSimulatorModel(sim);
    expect(sim.admin.state().models).toContain(model);
    const dataset = await makeDataset(db, lic.id, 'uploaded');
    const id = await makeFineTune(db, lic.id, dataset, { model, active: true });
    const res = await post(`/v1/fine-tunes/${id}/discard`, lic.key);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      id,
      discarded: true,
      available: false,
      active: false,
      model,
      creditsCharged: '216',
    });
    expect(sim.admin.state().models).not.toContain(model);
    // Discarding twice is harmless; the row is still listed for the report.
    expect((await post(`/v1/fine-tunes/${id}/discard`, lic.key)).status).toBe(200);
    const row = await db.selectFrom('fine_tunes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.discarded_at).not.toBeNull();
    expect(row.status).toBe('succeeded');
  });

  it('refuses an unfinished fine-tune and another license', async ({ db }) => {
    const dataset = await makeDataset(db, lic.id, 'uploaded');
    const running = await makeFineTune(db, lic.id, dataset, { status: 'running' });
    expect((await post(`/v1/fine-tunes/${running}/discard`, lic.key)).status).toBe(409);
    await makeLicense(db, 'lic-other');
    const { key } = await createApiKey(db, 'lic-other');
    expect((await post(`/v1/fine-tunes/${running}/discard`, key)).status).toBe(404);
  });
});
