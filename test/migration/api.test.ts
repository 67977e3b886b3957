import { fineTuneRequestSchema } from '@tuneline/contracts';
import { chooseTestSet, splitSeed } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { ADMIN_KEY, type AnyJson, type ApiContext, it, request } from '../api/support.ts';
import { trainedFineTune } from './support.ts';

// One-call migration (issue 21.4), the API's part: what a migration queues (the same documents and
// split, rebuilt for the target), its keys, its refusals, the bulk and admin forms. The pipeline that
// trains, evaluates and decides is test/migration/pipeline.test.ts.

let { t, a, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, a, call } = api);
});

const TARGET = { provider: 'azure', baseModel: 'gpt-4o-mini-2024-07-18' };

/** The fine-tune-request messages migrations queued, by request id. */
async function queuedRequests(db: Db): Promise<Map<string, AnyJson>> {
  const rows = await db
    .selectFrom('outbox')
    .select('payload')
    .where('queue', '=', 'fine-tune-requests')
    .execute();
  return new Map(
    rows.map((r) => {
      const payload = r.payload as AnyJson;
      return [payload.request.requestId as string, payload.request];
    }),
  );
}

/** A validator of one schema of the API's own OpenAPI document. */
async function schemaOf(name: string): Promise<(value: unknown) => boolean> {
  const { default: Ajv2020 } = await import('ajv/dist/2020.js');
  const ajv = new (Ajv2020 as unknown as new (o: object) => AnyJson)({
    strict: false,
    validateFormats: false,
  });
  ajv.addSchema({ $id: 'doc', components: (await call('GET', '/openapi.json')).json.components }, 'doc');
  const validate = ajv.getSchema(`doc#/components/schemas/${name}`);
  return (value) => {
    const ok = validate(value);
    if (!ok) throw new Error(`${name}: ${JSON.stringify(validate.errors)}`);
    return ok;
  };
}

const migrate = (id: string, body: unknown, key = a.key, headers?: Record<string, string>) =>
  call('POST', `/v1/fine-tunes/${id}/migrate`, key, body, headers);

describe('POST /v1/fine-tunes/{id}/migrate', () => {
  it('queues the same documents with the same split for the target, once per fine-tune and target', async () => {
    const from = await trainedFineTune(t.db, a.id);
    const first = await migrate(from.id, TARGET);
    expect(first.status, first.text).toBe(202);
    const m = first.json;
    expect(m).toMatchObject({
      status: 'running',
      stage: 'building',
      from: { fineTuneId: from.id, baseModel: 'gpt-4o-mini-2024-07-18', provider: null },
      target: { ...TARGET, hyperparameters: 'auto' },
      promote: 'if-not-worse',
      // Azure serves a fine-tune once deployed: promoting it deploys it at the catalogue's hourly fee.
      hostingCreditsPerHour: '1700',
      championFineTuneId: from.id,
      request: { requestId: `migration-${m.id}` },
      decision: null,
      aliases: [],
    });
    expect(m.actor).toMatch(/^key:tl_/);

    // What it queued: the old request's documents, model configuration and test share, on the target,
    // with the old request's split seed: the same testing documents.
    const queued = (await queuedRequests(t.db)).get(`migration-${m.id}`);
    const original = fineTuneRequestSchema.parse(from.payload);
    expect(queued).toMatchObject({
      licenseId: a.id,
      baseModel: TARGET.baseModel,
      provider: 'azure',
      documents: original.documents,
      modelConfig: original.modelConfig,
      testPercent: 20,
      splitSeed: splitSeed(original),
      autoTrain: true,
      job: { notifyEmails: 'ops@example.com', suffix: 'invoices', hyperparameters: 'auto', evaluate: true },
    });
    const ids = original.documents?.map((d) => d.id) ?? [];
    const rebuilt = fineTuneRequestSchema.parse(queued);
    expect(splitSeed(rebuilt)).toBe(splitSeed(original));
    expect(chooseTestSet(ids, 20, splitSeed(rebuilt))).toEqual(chooseTestSet(ids, 20, splitSeed(original)));
    // Without the pinned seed the other base model would split differently: the seed is what keeps it.
    expect(splitSeed({ ...original, baseModel: 'gpt-4.1-mini-2025-04-14' })).not.toBe(splitSeed(original));

    // The same fine-tune and target again: the same migration, nothing queued twice.
    const again = await migrate(from.id, { ...TARGET, promote: 'always' });
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(m.id);
    expect([...(await queuedRequests(t.db)).keys()].filter((k) => k === `migration-${m.id}`)).toHaveLength(1);

    const one = await call('GET', `/v1/migrations/${m.id}`, a.key);
    expect(one.status).toBe(200);
    expect(one.json).toEqual(again.json);
    expect((await schemaOf('Migration'))(one.json)).toBe(true);
    const ofFineTune = await call('GET', `/v1/fine-tunes/${from.id}/migrations`, a.key);
    expect(ofFineTune.json.data.map((x: AnyJson) => x.id)).toEqual([m.id]);
    const all = await call('GET', '/v1/migrations', a.key);
    expect(all.json.data.map((x: AnyJson) => x.id)).toContain(m.id);
  });

  it('a fine-tune built from the document store re-reads its configuration, with its split seed', async () => {
    const payload = fineTuneRequestSchema.parse({
      ...request('store-v1'),
      documents: undefined,
      documentStore: { configuration: 'invoices', profile: { name: 'invoices', version: 3 } },
      licenseId: a.id,
    });
    const from = await trainedFineTune(t.db, a.id, { payload });
    const res = await migrate(from.id, { provider: 'openai', baseModel: 'gpt-4.1-mini-2025-04-14' });
    expect(res.status, res.text).toBe(202);
    const queued = (await queuedRequests(t.db)).get(res.json.request.requestId);
    // Not the profile's version: the migration's own request on the same stored documents.
    expect(queued.documentStore).toEqual({ configuration: 'invoices' });
    expect(queued.documents).toBeUndefined();
    expect(queued.splitSeed).toBe(splitSeed(payload));
  });

  it('an Idempotency-Key names its own migration; used again for another target it is refused', async () => {
    const from = await trainedFineTune(t.db, a.id);
    const target = {
      provider: 'openai',
      baseModel: 'gpt-4.1-mini-2025-04-14',
      hyperparameters: { n_epochs: 2 },
    };
    const keyed = await migrate(from.id, target, a.key, { 'idempotency-key': 'mig-1' });
    expect(keyed.status).toBe(202);
    expect(keyed.json).toMatchObject({
      hostingCreditsPerHour: null,
      idempotencyKey: 'mig-1',
      target: { hyperparameters: { n_epochs: 2 } },
    });
    const replay = await migrate(from.id, target, a.key, { 'idempotency-key': 'mig-1' });
    expect(replay.status).toBe(200);
    expect(replay.json.id).toBe(keyed.json.id);
    // Another key for the same target is another migration (a retry after a failed one, say).
    const other = await migrate(from.id, target, a.key, { 'idempotency-key': 'mig-2' });
    expect(other.status).toBe(202);
    expect(other.json.id).not.toBe(keyed.json.id);
    const misuse = await migrate(from.id, TARGET, a.key, { 'idempotency-key': 'mig-1' });
    expect(misuse.status).toBe(422);
    const queued = await queuedRequests(t.db);
    expect(queued.get(`migration-${keyed.json.id}`)?.job.hyperparameters).toEqual({ n_epochs: 2 });
  });

  it('refuses a bad target, naming the field; and what cannot be migrated', async () => {
    const from = await trainedFineTune(t.db, a.id);
    const bad = async (body: unknown, field: string) => {
      const res = await migrate(from.id, body);
      expect(res.status, res.text).toBe(400);
      expect(res.json.error.fields.map((f: AnyJson) => f.field)).toContain(field);
    };
    await bad({ ...TARGET, baseModel: 'gpt-9-2030-01-01' }, 'baseModel');
    await bad({ ...TARGET, baseModel: 'gpt-4o-2024-05-13' }, 'baseModel'); // not fine-tunable
    await bad({ ...TARGET, provider: 'together' }, 'provider'); // Together does not train it
    await bad({ ...TARGET, provider: 'openai' }, 'baseModel'); // its own model and provider
    await bad({ ...TARGET, promote: 'sometimes' }, 'promote');
    await bad({ ...TARGET, hyperparameters: { n_epoch: 3 } }, 'hyperparameters.n_epoch');
    await bad({ baseModel: TARGET.baseModel }, 'provider');

    const running = await makeFineTune(t.db, a.id, await makeDataset(t.db, a.id, 'uploaded'), {
      status: 'running',
    });
    expect((await migrate(running, TARGET)).status).toBe(409);
    const unstored = await trainedFineTune(t.db, a.id, { payload: {} });
    const refused = await migrate(unstored.id, TARGET);
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toMatch(/request is not stored in full/);
    expect((await migrate(from.id, TARGET, (await makeLicense(t.db, 'lic-other')).key)).status).toBe(404);
  });

  it("answers 402 when the target's estimate plus margin exceeds the credits, and records nothing", async () => {
    const poor = await makeLicense(t.db, 'lic-poor', 100n);
    const from = await trainedFineTune(t.db, poor.id);
    const res = await migrate(from.id, TARGET, poor.key);
    expect(res.status).toBe(402);
    // 72,000 billed tokens at Azure's 3,000 credits / 1M: 216; the evaluation against the old model, 12
    // testing examples × 3 models at a credit each: 36; plus 10% (what the trainer will reserve).
    expect(res.json.error).toMatchObject({
      code: 'insufficient_credits',
      credits: {
        estimate: '252',
        training: '216',
        evaluation: '36',
        evaluationExamples: 12,
        evaluationModels: 3,
        required: '278',
        available: '100',
      },
    });
    const rows = await t.db
      .selectFrom('model_migrations')
      .select('id')
      .where('license_id', '=', poor.id)
      .execute();
    expect(rows).toEqual([]);
  });
});

describe('bulk and admin migrations', () => {
  it('migrates every fine-tune of the license on a base model, once; each checked, the total estimated', async () => {
    const lic = await makeLicense(t.db, 'lic-bulk', 100_000n);
    const active = await trainedFineTune(t.db, lic.id);
    const inactive = await trainedFineTune(t.db, lic.id, { active: false });
    const atAzure = await trainedFineTune(t.db, lic.id, { provider: 'azure' });
    const body = { fromBaseModel: 'gpt-4o-mini-2024-07-18', ...TARGET };

    const onlyActive = await call('POST', '/v1/fine-tunes/migrate', lic.key, { ...body, activeOnly: true });
    expect(onlyActive.status, onlyActive.text).toBe(200);
    expect(onlyActive.json.data.map((m: AnyJson) => m.from.fineTuneId)).toEqual([active.id]);
    expect(onlyActive.json.created).toBe(1);
    expect(onlyActive.json.skipped).toEqual([
      { fineTuneId: atAzure.id, reason: expect.stringMatching(/already on gpt-4o-mini-2024-07-18 at azure/) },
    ]);
    expect(onlyActive.json.estimate).toBe('252');

    const all = await call('POST', '/v1/fine-tunes/migrate', lic.key, body);
    expect(all.json.created).toBe(1);
    const byFrom = new Map(all.json.data.map((m: AnyJson) => [m.from.fineTuneId, m.id]));
    expect(byFrom.get(active.id)).toBe(
      onlyActive.json.data.find((m: AnyJson) => m.from.fineTuneId === active.id).id,
    );
    expect(byFrom.has(inactive.id)).toBe(true);
    const again = await call('POST', '/v1/fine-tunes/migrate', lic.key, body);
    expect(again.json).toMatchObject({ created: 0, estimate: '0' });
    expect((await schemaOf('BulkMigrationResult'))(again.json)).toBe(true);
    expect(again.json.data.map((m: AnyJson) => m.id).sort()).toEqual(
      all.json.data.map((m: AnyJson) => m.id).sort(),
    );

    // Only those at one provider: the Azure one moves to OpenAI's gpt-4.1-mini, the others stay out.
    const fromAzure = await call('POST', '/v1/fine-tunes/migrate', lic.key, {
      fromBaseModel: 'gpt-4o-mini-2024-07-18',
      fromProvider: 'azure',
      provider: 'openai',
      baseModel: 'gpt-4.1-mini-2025-04-14',
    });
    expect(fromAzure.json.data.map((m: AnyJson) => m.from.fineTuneId)).toEqual([atAzure.id]);

    const poor = await makeLicense(t.db, 'lic-bulk-poor', 300n);
    await trainedFineTune(t.db, poor.id);
    await trainedFineTune(t.db, poor.id);
    const refused = await call('POST', '/v1/fine-tunes/migrate', poor.key, body);
    expect(refused.status).toBe(402);
    expect(refused.json.error.credits).toMatchObject({ estimate: '504', available: '300' });
  });

  it('the admin form migrates every license, reporting a license its credits do not cover', async () => {
    const rich = await makeLicense(t.db, 'lic-admin-rich', 100_000n);
    const poor = await makeLicense(t.db, 'lic-admin-poor', 10n);
    await trainedFineTune(t.db, rich.id);
    await trainedFineTune(t.db, poor.id);
    const body = {
      fromBaseModel: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      baseModel: 'gpt-4.1-nano-2025-04-14',
    };
    expect((await call('POST', '/v1/admin/migrations', a.key, body)).status).toBe(401);
    const res = await call('POST', '/v1/admin/migrations', ADMIN_KEY, body);
    expect(res.status, res.text).toBe(200);
    const byLicense = new Map(res.json.licenses.map((l: AnyJson) => [l.licenseId, l]));
    expect(byLicense.get(rich.id)).toMatchObject({ created: 1, refused: null });
    expect((byLicense.get(rich.id) as AnyJson).data[0].actor).toBe('admin');
    expect((byLicense.get(poor.id) as AnyJson).refused).toMatch(/Insufficient credits/);
    expect((await schemaOf('AdminBulkMigrationResult'))(res.json)).toBe(true);
    const one = await call('POST', '/v1/admin/migrations', ADMIN_KEY, { ...body, licenseId: rich.id });
    expect(one.json.licenses).toHaveLength(1);
    expect(one.json.licenses[0].created).toBe(0);
  });
});
