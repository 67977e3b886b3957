// Discarding a fine-tune: its model is deleted at the provider (the simulator, through the real SDK),
// the row stays for the ledger and the report, marked discarded, neither available nor active.
import { buildApi, createApiKey } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { createProviderSet, providerEnvSchema } from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

let t: TestDatabase;
let redis: Redis;
let sim: RunningSimulator;
let app: Awaited<ReturnType<typeof buildApi>>;
let lic: { id: string; key: string };

async function post(url: string, key: string) {
  const res = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` } });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers
  return { status: res.statusCode, json: res.json() as any };
}

async function trainedModel(): Promise<string> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey });
  const lines = Array.from({ length: 10 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: `n ${i}` },
        { role: 'assistant', content: `${i}` },
      ],
    }),
  ).join('\n');
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines), 'd.jsonl'),
    purpose: 'fine-tune',
  });
  await waitFor(async () => (await client.files.retrieve(file.id)).status === 'processed', 10_000, 'file');
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-4o-mini-2024-07-18',
    training_file: file.id,
  });
  return waitFor(
    async () => (await client.fineTuning.jobs.retrieve(job.id)).fine_tuned_model ?? undefined,
    15_000,
    'model',
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  redis = createRedis(redisUrl(), 'producer');
  sim = await startSimulator({ port: 0, seed: 27, speed: 5_000 });
  const set = createProviderSet(
    providerEnvSchema.parse({ SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
  );
  app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: testPrefix(),
    catalogue: defaultCatalogue,
    deleteModel: (f) => set.for(f.provider).deleteModel(f.model, f.providerJobId),
  });
  lic = await makeLicense(t.db, 'lic-discard');
});

afterAll(async () => {
  await app?.close();
  await sim?.close();
  redis?.disconnect();
  await t?.drop();
});

describe('discarding a fine-tune', () => {
  it('deletes the model at the provider and keeps the row, marked discarded', async () => {
    const model = await trainedModel();
    expect(sim.admin.state().models).toContain(model);
    const dataset = await makeDataset(t.db, lic.id, 'uploaded');
    const id = await makeFineTune(t.db, lic.id, dataset, { model, active: true });
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
    const row = await t.db
      .selectFrom('fine_tunes')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.discarded_at).not.toBeNull();
    expect(row.status).toBe('succeeded');
  });

  it('refuses an unfinished fine-tune and another license', async () => {
    const dataset = await makeDataset(t.db, lic.id, 'uploaded');
    const running = await makeFineTune(t.db, lic.id, dataset, { status: 'running' });
    expect((await post(`/v1/fine-tunes/${running}/discard`, lic.key)).status).toBe(409);
    await makeLicense(t.db, 'lic-other');
    const { key } = await createApiKey(t.db, 'lic-other');
    expect((await post(`/v1/fine-tunes/${running}/discard`, key)).status).toBe(404);
  });
});
