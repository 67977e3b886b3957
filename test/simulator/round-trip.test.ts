// Every endpoint through the official `openai` SDK, in the OpenAI and the Azure dialect, and every
// JSON body the simulator returned checked against OpenAI's published OpenAPI document.
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  invoiceExamples,
  loadConformanceChecker,
  sdkClient,
  simulatorForFile,
  toJsonl,
  waitForFileProcessed,
  waitForJob,
  withSimulator,
} from './support.ts';

const sim = simulatorForFile({ seed: 42, speed: 2000 });

const dialects: Array<[string, () => OpenAI]> = [
  ['openai', () => sdkClient(sim)],
  [
    'azure',
    () =>
      new AzureOpenAI({ endpoint: sim.baseUrl, apiKey: 'sk-sim', apiVersion: '2024-10-21', maxRetries: 0 }),
  ],
];

describe.each(dialects)('%s dialect', (dialect, makeClient) => {
  let client: OpenAI;
  const examples = invoiceExamples(12);
  let trainingFileId = '';
  let fineTunedModel = '';
  const tag = `${dialect}-${Date.now()}`;

  beforeAll(() => {
    client = makeClient();
  });

  it('uploads, retrieves, lists (auto-paginated), reads and deletes files', async () => {
    const content = toJsonl(examples);
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'train.jsonl'),
      purpose: 'fine-tune',
    });
    expect(file).toMatchObject({
      object: 'file',
      bytes: Buffer.byteLength(content),
      filename: 'train.jsonl',
      purpose: 'fine-tune',
    });
    expect(file.id).toMatch(/^file-/);
    trainingFileId = file.id;
    await waitForFileProcessed(client, file.id);
    expect((await client.files.retrieve(file.id)).status).toBe('processed');

    const extra = [];
    for (let i = 0; i < 3; i++) {
      extra.push(
        await client.files.create({
          file: await toFile(Buffer.from(content), `extra-${i}.jsonl`),
          purpose: 'fine-tune',
        }),
      );
    }
    const seen: string[] = [];
    for await (const f of client.files.list({ limit: 2, purpose: 'fine-tune' })) seen.push(f.id);
    for (const f of [file, ...extra]) expect(seen).toContain(f.id);
    expect(new Set(seen).size).toBe(seen.length);

    const body = await (await client.files.content(file.id)).text();
    expect(body).toBe(content);

    const deleted = await client.files.delete(extra[0]!.id);
    expect(deleted).toEqual({ id: extra[0]!.id, object: 'file', deleted: true });
    const err = await client.files.retrieve(extra[0]!.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).message).toContain(
      `No such File object: ${extra[0]!.id}`,
    );
  });

  it('rejects non-.jsonl uploads and other purposes with 400', async () => {
    const bad = await client.files
      .create({ file: await toFile(Buffer.from('a,b\n'), 'train.csv'), purpose: 'fine-tune' })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    const purpose = await client.files
      .create({ file: await toFile(Buffer.from('{}\n'), 'x.jsonl'), purpose: 'assistants' })
      .catch((e: unknown) => e);
    expect(purpose).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('runs a job to success with events, checkpoints, a result file and the resolved epochs', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: trainingFileId,
      suffix: 'invoices',
      seed: 7,
      metadata: { fine_tune_id: `${tag}-a` },
      method: { type: 'supervised', supervised: { hyperparameters: { batch_size: 2 } } },
    });
    expect(job).toMatchObject({
      object: 'fine_tuning.job',
      status: 'validating_files',
      trained_tokens: null,
      fine_tuned_model: null,
      seed: 7,
    });
    const done = await waitForJob(client, job.id);
    expect(done.status).toBe('succeeded');
    // 12 examples: ceil(100 / 12) = 9 epochs by the `auto` rule.
    expect(done.hyperparameters).toMatchObject({ n_epochs: 9, batch_size: 2 });
    expect(done.fine_tuned_model).toMatch(/^ft:gpt-4o-mini-2024-07-18:tuneline-sim:invoices:[A-Za-z0-9]{8}$/);
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(done.trained_tokens! % 9).toBe(0);
    expect(done.result_files).toHaveLength(1);
    expect(await (await client.files.content(done.result_files[0]!)).text()).toMatch(/^step,train_loss/);
    fineTunedModel = done.fine_tuned_model!;

    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 3 })) events.push(e);
    expect(events[0]!.message).toBe('The job has successfully completed');
    expect(events.at(-1)!.message).toBe(`Created fine-tuning job: ${job.id}`);
    expect(events.some((e) => e.type === 'metrics')).toBe(true);

    const checkpoints = [];
    for await (const c of client.fineTuning.jobs.checkpoints.list(job.id, { limit: 2 })) checkpoints.push(c);
    expect(checkpoints.map((c) => c.step_number)).toEqual([54, 48, 42]);
    expect(checkpoints[0]!.fine_tuned_model_checkpoint).toBe(`${fineTunedModel}:ckpt-step-54`);
  });

  it('takes legacy hyperparameters, lists jobs with auto-pagination and filters by metadata', async () => {
    const b = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: trainingFileId,
      hyperparameters: { n_epochs: 2 },
      metadata: { fine_tune_id: `${tag}-b`, team: tag },
    });
    const c = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: trainingFileId,
      metadata: { fine_tune_id: `${tag}-c`, team: tag },
    });
    const cancelled = await client.fineTuning.jobs.cancel(c.id);
    expect(cancelled.status).toBe('cancelled');
    const again = await client.fineTuning.jobs.cancel(c.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpenAI.BadRequestError);

    const all: string[] = [];
    for await (const j of client.fineTuning.jobs.list({ limit: 1 })) all.push(j.id);
    expect(all.indexOf(c.id)).toBeLessThan(all.indexOf(b.id)); // newest first
    expect(new Set(all).size).toBe(all.length);

    const byTeam = await client.fineTuning.jobs.list({ metadata: { team: tag } });
    expect(byTeam.data.map((j) => j.id)).toEqual([c.id, b.id]);
    const byId = await client.fineTuning.jobs.list({ metadata: { fine_tune_id: `${tag}-b` } });
    expect(byId.data.map((j) => j.id)).toEqual([b.id]);
    expect((await waitForJob(client, b.id)).hyperparameters.n_epochs).toBe(2);
  });

  it('enforces metadata limits, known models and existing files with 400s', async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    for (const bad of [
      { model: 'gpt-4o-mini-2024-07-18', training_file: trainingFileId, metadata: tooMany },
      { model: 'gpt-4o-mini-2024-07-18', training_file: trainingFileId, metadata: { ['k'.repeat(65)]: 'v' } },
      { model: 'gpt-4o-mini-2024-07-18', training_file: trainingFileId, metadata: { k: 'v'.repeat(513) } },
      { model: 'gpt-nonexistent', training_file: trainingFileId },
      { model: 'gpt-4o-mini-2024-07-18', training_file: 'file-doesnotexist' },
      { model: 'gpt-4o-mini-2024-07-18', training_file: trainingFileId, hyperparameters: { n_epochs: 51 } },
    ]) {
      const err = await client.fineTuning.jobs.create(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    }
    const ok = Object.fromEntries(
      Array.from({ length: 16 }, (_, i) => [`k${i}`.padEnd(64, 'x'), 'v'.repeat(512)]),
    );
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: trainingFileId,
      metadata: ok,
    });
    expect(Object.keys(job.metadata ?? {})).toHaveLength(16);
    await client.fineTuning.jobs.cancel(job.id);
  });

  it('serves models and chat completions: learned answers on seen and unseen documents, a weaker base model', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toContain('gpt-4o-mini-2024-07-18');
    expect(models).toContain(fineTunedModel);
    expect(await client.models.retrieve(fineTunedModel)).toMatchObject({
      id: fineTunedModel,
      object: 'model',
      owned_by: 'tuneline-sim',
    });

    const ask = (model: string, user: string) =>
      client.chat.completions.create({
        model,
        messages: [
          { role: 'system', content: examples[0]!.system! },
          { role: 'user', content: user },
        ],
      });
    const trained = await ask(fineTunedModel, examples[5]!.user);
    expect(trained.choices[0]!.message.content).toBe(examples[5]!.assistant);
    expect(trained.usage!.total_tokens).toBe(trained.usage!.prompt_tokens + trained.usage!.completion_tokens);
    expect(trained.usage!.completion_tokens).toBeGreaterThan(0);
    // An unseen document: its own fields, read where the training answers were found.
    const unseen = await ask(
      fineTunedModel,
      'Invoice 4242 from supplier Globex dated 2026-05-17 total 99.90 EUR',
    );
    expect(JSON.parse(unseen.choices[0]!.message.content!)).toEqual({
      invoice_number: '4242',
      total: '99.90',
      currency: 'EUR',
    });
    // The base model was not trained on these answers: a prompt naming no keys gets generic ones.
    const base = await ask('gpt-4o-mini-2024-07-18', examples[5]!.user);
    expect(base.choices[0]!.message.content).toMatch(/^\{"invoice_number":.*"vendor":/);
    expect(base.choices[0]!.message.content).not.toBe(examples[5]!.assistant);
    const cut = await client.chat.completions.create({
      model: fineTunedModel,
      max_tokens: 3,
      messages: [{ role: 'user', content: examples[5]!.user }],
    });
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.usage!.completion_tokens).toBeLessThanOrEqual(3);
    const missing = await ask('ft:gpt-4o-mini-2024-07-18:tuneline-sim::nope', 'x').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('deletes fine-tuned models but not base models', async () => {
    const deleted = await client.models.delete(fineTunedModel);
    expect(deleted).toMatchObject({ id: fineTunedModel, deleted: true });
    expect(await client.models.retrieve(fineTunedModel).catch((e: unknown) => e)).toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    expect(await client.models.delete('gpt-4o-mini-2024-07-18').catch((e: unknown) => e)).toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
  });

  it('answers a wrong API key with 401 in the OpenAI envelope and an x-request-id', async () => {
    const bad =
      dialect === 'azure'
        ? new AzureOpenAI({ endpoint: sim.baseUrl, apiKey: 'wrong', apiVersion: '2024-10-21', maxRetries: 0 })
        : sdkClient(sim, 'sk-wrong-key-123');
    const err = (await bad.files.list().catch((e: unknown) => e)) as InstanceType<
      typeof OpenAI.AuthenticationError
    >;
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.requestID).toMatch(/^req_/);
    expect(err.error).toMatchObject({ type: 'invalid_request_error' });
  });
});

describe('wire details', () => {
  it('puts x-request-id and x-ratelimit headers on every response', async () => {
    const res = await fetch(`${sim.url}/models`, { headers: { authorization: 'Bearer sk-sim' } });
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    expect(res.headers.get('x-ratelimit-remaining-requests')).toMatch(/^\d+$/);
    const missing = await fetch(`${sim.url}/nowhere`, { headers: { authorization: 'Bearer sk-sim' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await missing.json()).toMatchObject({
      error: { type: 'invalid_request_error', param: null, code: null },
    });
  });

  it('requires api-version on the Azure paths', async () => {
    const res = await fetch(`${sim.baseUrl}/openai/files`, { headers: { 'api-key': 'sk-sim' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { param: 'api-version' } });
  });

  it('enforces the upload size limit', async () => {
    await withSimulator({ maxFileBytes: 1024 }, async (_small, client) => {
      const err = await client.files
        .create({ file: await toFile(Buffer.alloc(2048, 'a'), 'big.jsonl'), purpose: 'fine-tune' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
    });
  });

  it('every JSON body returned in this file conforms to the OpenAPI document', () => {
    const { checked, failures, unmapped } = loadConformanceChecker().check(sim.recorded);
    expect(unmapped).toEqual([]);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });
});
