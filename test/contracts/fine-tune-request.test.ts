import {
  canonicalJson,
  type FineTuneRequestInput,
  FineTuneRequestProducer,
  filesUploadMessage,
  fineTuneRequestSchema,
  formatZodError,
  parseEmailList,
  QUEUE_NAMES,
  queues,
  requestJobId,
  SERVICES,
  scheduledPollJobId,
} from '@tuneline/contracts';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { it, test } from '../support/fixtures.ts';

function validRequest(overrides: Partial<FineTuneRequestInput> = {}): FineTuneRequestInput {
  return {
    requestId: 'req-001',
    licenseId: 'lic-acme',
    documents: Array.from({ length: 12 }, (_, i) => ({
      id: `doc-${i}`,
      text: `INVOICE ${i}\nTotal: ${100 + i}.00 EUR`,
      fields: { invoiceNumber: `INV-${i}`, total: 100 + i },
    })),
    modelConfig: {
      systemPrompt: 'Extract the invoice fields as JSON.',
      userPromptTemplate: 'Document:\n{{text}}',
      mappedFields: ['invoiceNumber', 'total'],
    },
    baseModel: 'gpt-4o-mini-2024-07-18',
    job: { description: 'Invoices Q3', notifyEmails: 'ops@acme.test; finance@acme.test' },
    ...overrides,
  };
}

function errorsOf(input: unknown): string {
  const parsed = fineTuneRequestSchema.safeParse(input);
  if (parsed.success) throw new Error('expected the request to be rejected');
  return formatZodError(parsed.error);
}

describe('FineTuneRequest schema', () => {
  it('accepts a valid request and applies the defaults', () => {
    const parsed = fineTuneRequestSchema.parse(validRequest());
    expect(parsed.dump).toBe('mapped');
    expect(parsed.testPercent).toBe(0);
    expect(parsed.autoTrain).toBe(true);
    expect(parsed.job.hyperparameters).toBe('auto');
  });

  it('accepts explicit hyperparameters within range', () => {
    const parsed = fineTuneRequestSchema.parse(
      validRequest({
        job: { hyperparameters: { n_epochs: 50, batch_size: 256, learning_rate_multiplier: 0.1 } },
      }),
    );
    expect(parsed.job.hyperparameters).toEqual({
      n_epochs: 50,
      batch_size: 256,
      learning_rate_multiplier: 0.1,
    });
  });

  it.each([
    [
      'an over-long description',
      { job: { description: 'x'.repeat(121) } },
      'job.description: must be at most 120 characters',
    ],
    [
      'a 19-character suffix',
      { job: { suffix: 'a'.repeat(19) } },
      'job.suffix: must be at most 18 characters',
    ],
    [
      'an upper-case suffix',
      { job: { suffix: 'Invoices' } },
      'job.suffix: may only contain lower-case letters',
    ],
    [
      'a malformed e-mail in the ; list',
      { job: { notifyEmails: 'ops@acme.test; not-an-address' } },
      'job.notifyEmails: "not-an-address" is not a valid e-mail address',
    ],
    [
      '9 documents',
      { documents: (validRequest().documents ?? []).slice(0, 9) },
      'documents: must contain at least 10 documents',
    ],
    ['a base model of unknown format', { baseModel: 'GPT 4o!' }, 'baseModel: must be a model name such as'],
    ['a negative testPercent', { testPercent: -5 }, 'testPercent: must be between 0 and 50'],
    ['a testPercent over 50', { testPercent: 60 }, 'testPercent: must be between 0 and 50'],
    ['n_epochs out of range', { job: { hyperparameters: { n_epochs: 51 } } }, 'job.hyperparameters'],
    [
      'a zero learning rate multiplier',
      { job: { hyperparameters: { learning_rate_multiplier: 0 } } },
      'job.hyperparameters',
    ],
    ['an unknown dump mode', { dump: 'some' as 'all' }, 'dump:'],
    [
      'a requestId with a colon',
      { requestId: 'a:b' },
      "requestId: requestId may only contain letters, digits, '.', '_' and '-'",
    ],
  ])('rejects %s with a field-named message', (_what, overrides, expected) => {
    expect(errorsOf(validRequest(overrides as Partial<FineTuneRequestInput>))).toContain(expected);
  });

  it('names the document index of a bad document', () => {
    const documents = validRequest().documents ?? [];
    documents[3] = { id: '', text: 'x', fields: {} };
    expect(errorsOf(validRequest({ documents }))).toContain('documents[3].id: must not be empty');
  });

  it('rejects unknown top-level keys by name', () => {
    expect(errorsOf({ ...validRequest(), extra: 1 })).toMatch(/Unrecognized key.*extra/);
  });
});

describe('e-mail list', () => {
  it('trims, drops empty entries and de-duplicates case-insensitively', () => {
    expect(parseEmailList(' a@x.test ;; B@y.test; A@X.test ;')).toEqual({
      ok: true,
      emails: ['a@x.test', 'B@y.test'],
    });
  });
  it('refuses more than 10 addresses', () => {
    const list = Array.from({ length: 11 }, (_, i) => `u${i}@x.test`).join(';');
    expect(parseEmailList(list)).toEqual({ ok: false, message: 'at most 10 addresses (got 11)' });
  });
  it('refuses CR/LF anywhere (header injection)', () => {
    expect(parseEmailList('a@x.test\r\nBcc: evil@x.test')).toEqual({
      ok: false,
      message: 'must not contain line breaks (CR/LF)',
    });
  });
});

describe('queue catalogue', () => {
  it('derives the services, in pipeline order, from the consumers, and every message schema accepts a valid example', () => {
    expect(SERVICES).toEqual([
      'dataset-builder',
      'uploader',
      'trainer',
      'poller',
      'billing',
      'evaluator',
      'notifier',
    ]);
    const id = '7b0d4f0e-4a53-4a36-9d7e-1f0c3c7f0a11';
    const env = { schemaVersion: 1, correlationId: 'corr-1' };
    expect(queues['files-upload'].schema.parse({ ...env, datasetId: id })).toMatchObject({ datasetId: id });
    expect(queues['finetune-create'].schema.parse({ ...env, fineTuneId: id })).toMatchObject({
      fineTuneId: id,
    });
    expect(queues['finetune-poll'].schema.parse({ ...env, fineTuneId: id })).toMatchObject({
      reason: 'scheduled',
    });
    expect(queues['billing-settle'].schema.parse({ ...env, fineTuneId: id })).toMatchObject({
      fineTuneId: id,
    });
    expect(queues.evaluate.schema.parse({ ...env, fineTuneId: id })).toMatchObject({ fineTuneId: id });
    expect(queues['notify-send'].schema.parse({ ...env, notificationId: id })).toMatchObject({
      notificationId: id,
    });
    expect(
      queues['fine-tune-requests'].schema.parse({ ...env, request: validRequest() }).request.requestId,
    ).toBe('req-001');
  });

  it('rejects messages with a wrong schema version, missing ids or extra state, naming the field', () => {
    const bad = queues['files-upload'].schema.safeParse({
      schemaVersion: 2,
      correlationId: 'c',
      datasetId: 'x',
      status: 'ready',
    });
    expect(bad.success).toBe(false);
    const text = formatZodError(bad.error!);
    expect(text).toContain('schemaVersion:');
    expect(text).toContain('datasetId:');
    expect(text).toMatch(/Unrecognized key.*status/);
  });

  it('builds deterministic job ids without colons', () => {
    const id = '7b0d4f0e-4a53-4a36-9d7e-1f0c3c7f0a11';
    expect(filesUploadMessage({ datasetId: id, correlationId: 'c' }).jobId).toBe(`files-upload-${id}`);
    expect(scheduledPollJobId(id, 3)).toBe(`finetune-poll-${id}-3`);
    expect(requestJobId('lic-a', 'req-1')).toBe('fine-tune-requests-lic-a~req-1');
    expect(() => filesUploadMessage({ datasetId: 'a:b', correlationId: 'c' })).toThrow(
      /must not contain ':'/,
    );
  });

  it('every queue retries with exponential backoff and jitter and bounds retention', () => {
    for (const name of QUEUE_NAMES) {
      const opts = queues[name].jobOptions;
      expect(opts.attempts).toBeGreaterThan(1);
      expect(opts.backoff).toMatchObject({ type: 'exponential', jitter: 0.5 });
      expect(opts.removeOnComplete).toMatchObject({ age: expect.any(Number) });
    }
  });
});

describe('FineTuneRequestProducer', () => {
  let redis: Redis;
  let producer: FineTuneRequestProducer;
  let queue: Queue;
  test.beforeAll(({ redis: client, prefix }) => {
    redis = client;
    producer = new FineTuneRequestProducer({ connection: redis, prefix });
    queue = new Queue('fine-tune-requests', { connection: redis, prefix });
  });
  afterAll(async () => {
    await producer.close();
    await queue.close();
  });

  it('validates before enqueueing and names each bad field', async () => {
    const result = await producer.enqueue(validRequest({ testPercent: -1, job: { suffix: 'x'.repeat(19) } }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.field).sort()).toEqual(['job.suffix', 'testPercent']);
    expect(result.message).toMatch(/^invalid fine-tune request: /);
    expect(await queue.count()).toBe(0);
  });

  it('enqueues once per (license, requestId); a retry collapses, a conflicting reuse is refused', async () => {
    const first = await producer.enqueue(validRequest());
    expect(first).toMatchObject({ ok: true, jobId: 'fine-tune-requests-lic-acme~req-001', duplicate: false });
    const retry = await producer.enqueue(validRequest());
    expect(retry).toMatchObject({ ok: true, duplicate: true });
    if (first.ok && retry.ok) expect(retry.correlationId).toBe(first.correlationId);
    const conflict = await producer.enqueue(validRequest({ testPercent: 20 }));
    expect(conflict).toMatchObject({ ok: false, errors: [{ field: 'requestId' }] });
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 1 });
  });

  it('enqueues both of two tenants whose ids joined with "-" read the same (X + eu-1, X-eu + 1)', async () => {
    const first = await producer.enqueue(validRequest({ licenseId: 'X', requestId: 'eu-1' }));
    const second = await producer.enqueue(
      validRequest({ licenseId: 'X-eu', requestId: '1', testPercent: 10 }),
    );
    expect(first).toMatchObject({ ok: true, duplicate: false });
    expect(second).toMatchObject({ ok: true, duplicate: false });
    if (!first.ok || !second.ok) return;
    expect(second.jobId).not.toBe(first.jobId);
    expect((await queue.getJob(first.jobId))?.data.request).toMatchObject({
      licenseId: 'X',
      requestId: 'eu-1',
    });
    expect((await queue.getJob(second.jobId))?.data.request).toMatchObject({
      licenseId: 'X-eu',
      requestId: '1',
    });
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps a "__proto__" key as data', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson(JSON.parse('{"__proto__":"x","a":1}'))).toBe('{"__proto__":"x","a":1}');
  });
});
