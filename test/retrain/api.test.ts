import { checkTrainingProfile } from '@tuneline/dataset-builder/retrain';
import { Queue } from 'bullmq';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { type ApiUnderTest, startApi } from '../support/api-app.ts';
import { it, test } from '../support/fixtures.ts';
import { builderDeps, ingest, invoice } from './support.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON
type AnyJson = any;

let api: ApiUnderTest;
let env: ReturnType<typeof builderDeps>;
let a: { id: string; key: string };
let b: { id: string; key: string };

const call = (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
  api.call(method, url, key, payload);

const profile = (over: Record<string, unknown> = {}) => ({
  name: 'invoices',
  configuration: 'invoices',
  modelConfig: {
    systemPrompt: 'Extract JSON.',
    userPromptTemplate: 'Document {{documentId}}:\n{{text}}',
    mappedFields: ['total'],
  },
  baseModel: 'gpt-4o-mini-2024-07-18',
  policy: { minNewDocuments: 20, minIntervalHours: 12, monthlyBudgetCredits: 50_000, promotion: 'manual' },
  ...over,
});

test.beforeAll(async ({ db, prefix }) => {
  api = await startApi(db, prefix);
  env = builderDeps(db);
  a = await makeLicense(db, 'prof-a');
  b = await makeLicense(db, 'prof-b');
});

afterAll(async () => {
  await api?.close();
  env?.cleanup();
});

describe('training profiles API', () => {
  it('creates a profile with defaults applied, replaces it by name, and lists it', async () => {
    const created = await call('POST', '/v1/training-profiles', a.key, profile());
    expect(created.status).toBe(201);
    expect(created.json.settings).toMatchObject({ dump: 'mapped', testPercent: 20, enabled: true });
    expect(created.json.settings.policy).toEqual({
      minNewDocuments: 20,
      minIntervalHours: 12,
      monthlyBudgetCredits: 50_000,
      promotion: 'manual',
    });
    const replaced = await call('POST', '/v1/training-profiles', a.key, profile({ testPercent: 25 }));
    expect(replaced.status).toBe(200);
    expect(replaced.json.id).toBe(created.json.id);
    expect(replaced.json.settings.testPercent).toBe(25);
    const list = await call('GET', '/v1/training-profiles', a.key);
    expect(list.json.profiles.map((p: AnyJson) => p.name)).toEqual(['invoices']);
    expect((await call('GET', '/v1/training-profiles', b.key)).json.profiles).toEqual([]);
  });

  it('refuses bad settings with a 400 naming the field', async () => {
    const typo = await call(
      'POST',
      '/v1/training-profiles',
      a.key,
      profile({ policy: { minNewDocument: 5 } }),
    );
    expect(typo.status).toBe(400);
    expect(typo.json.error.message).toContain('policy');
    expect(typo.json.error.message).toContain('minNewDocument');
    const model = await call(
      'POST',
      '/v1/training-profiles',
      a.key,
      profile({ baseModel: 'gpt-4o-2024-05-13' }),
    );
    expect(model.status).toBe(400);
    expect(model.json.error.fields).toEqual([{ field: 'baseModel', message: 'is not fine-tunable' }]);
    const promotion = await call(
      'POST',
      '/v1/training-profiles',
      a.key,
      profile({ policy: { promotion: 'sometimes' } }),
    );
    expect(promotion.json.error.fields[0].field).toBe('policy.promotion');
  });

  it('queues a manual re-train, whose decision and version the profile then shows', async ({
    db,
    redis,
    prefix,
  }) => {
    await ingest(
      db,
      'prof-a',
      Array.from({ length: 30 }, (_, i) => invoice(`m${i}`)),
    );
    const queued = await call('POST', '/v1/training-profiles/invoices/retrain', a.key);
    expect(queued.status).toBe(202);
    const queue = new Queue('retrain-check', { connection: redis, prefix });
    const job = await queue.getJob(queued.json.jobId);
    await queue.close();
    expect(job?.data).toMatchObject({ trigger: 'manual', correlationId: queued.json.correlationId });
    // What the dataset-builder's retrain-check stage does with that job:
    await checkTrainingProfile(env.deps, job?.data.profileId, job?.data.trigger);

    const detail = await call('GET', '/v1/training-profiles/invoices', a.key);
    expect(detail.status).toBe(200);
    expect(detail.json.lastDecision).toMatchObject({
      action: 'train',
      reason: 'asked for: 30 documents stored',
    });
    expect(detail.json.versions).toMatchObject([
      {
        version: 1,
        trigger: 'manual',
        documents: 30,
        added: 30,
        removed: 0,
        requestId: 'profile-invoices-v1',
      },
    ]);
    expect(BigInt(detail.json.versions[0].estimatedCredits)).toBeGreaterThan(0n);
  });

  it("answers 404 for another license's profile", async () => {
    expect((await call('GET', '/v1/training-profiles/invoices', b.key)).status).toBe(404);
    expect((await call('POST', '/v1/training-profiles/invoices/retrain', b.key)).status).toBe(404);
  });
});
