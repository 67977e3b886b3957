// The provider profile against the simulator over HTTP, in the OpenAI and the Azure dialect, its typed
// errors, and how a stage turns them into the runtime's error classes.
import { Readable } from 'node:stream';
import {
  createProvider,
  createProviderFromEnv,
  ProviderError,
  type ProviderProfile,
  type ProviderRequestObserver,
  providerEnvSchema,
  providerOperation,
  resolveProviderSettings,
  retryAfterMs,
  toProviderError,
  WebhookVerificationError,
} from '@tuneline/provider';
import {
  ConfigError,
  createMetrics,
  PermanentError,
  RateLimitedError,
  stageFailure,
} from '@tuneline/runtime';
import { signWebhook } from '@tuneline/simulator';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadConformanceChecker,
  type RecordingSimulator,
  startRecordingSimulator,
} from '../simulator/support.ts';
import { processedTrainingFile, trainingJsonl } from './support.ts';

const SECRET = `whsec_${Buffer.from('provider-profile-test-secret').toString('base64')}`;

const parseEnv = (env: Record<string, string>) => providerEnvSchema.parse(env);

describe('choosing the provider from env', () => {
  it('defaults to the simulator when no real credentials are set', () => {
    expect(resolveProviderSettings(parseEnv({}))).toMatchObject({
      kind: 'simulator',
      apiKey: 'sk-sim',
      baseURL: 'http://127.0.0.1:4010/v1',
    });
    expect(resolveProviderSettings(parseEnv({ OPENAI_API_KEY: '' }))).toMatchObject({ kind: 'simulator' });
  });

  it('picks openai or azure when their credentials are set, or as told by PROVIDER', () => {
    expect(resolveProviderSettings(parseEnv({ OPENAI_API_KEY: 'sk-real' }))).toMatchObject({
      kind: 'openai',
      apiKey: 'sk-real',
    });
    expect(
      resolveProviderSettings(
        parseEnv({
          AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com',
          AZURE_OPENAI_API_KEY: 'k',
          OPENAI_API_KEY: 'sk',
        }),
      ),
    ).toMatchObject({
      kind: 'azure',
      endpoint: 'https://x.openai.azure.com',
      apiVersion: '2025-04-01-preview',
    });
    expect(
      resolveProviderSettings(parseEnv({ PROVIDER: 'simulator', OPENAI_API_KEY: 'sk-real' })),
    ).toMatchObject({ kind: 'simulator' });
  });

  it('names missing or bad settings', () => {
    expect(() =>
      resolveProviderSettings(parseEnv({ PROVIDER: 'azure', AZURE_OPENAI_ENDPOINT: 'https://x' })),
    ).toThrow(/AZURE_OPENAI_API_KEY/);
    expect(() => resolveProviderSettings(parseEnv({ PROVIDER: 'openai' }))).toThrow(ConfigError);
    expect(() => createProviderFromEnv({ SIMULATOR_URL: 'not a url' })).toThrow(/SIMULATOR_URL/);
    expect(() => createProviderFromEnv({ PROVIDER: 'bedrock' })).toThrow(/PROVIDER/);
  });
});

describe('error mapping', () => {
  const apiError = (status: number, headers: Record<string, string> = {}) =>
    OpenAI.APIError.generate(
      status,
      { error: { message: `boom ${status}`, type: 'x' } },
      undefined,
      new Headers(headers),
    );

  const asProviderError = (err: unknown) => {
    const mapped = toProviderError(err);
    if (!(mapped instanceof ProviderError)) throw new Error(`not a ProviderError: ${String(mapped)}`);
    return mapped;
  };

  it('gives every SDK error a kind, its status and the SDK error as cause; 429 carries Retry-After', () => {
    const kinds: [number, string][] = [
      [401, 'auth'],
      [403, 'auth'],
      [404, 'not_found'],
      [400, 'rejected'],
      [413, 'rejected'],
      [422, 'rejected'],
      [408, 'transient'],
      [409, 'transient'],
      [500, 'transient'],
      [503, 'transient'],
    ];
    for (const [status, kind] of kinds) {
      const sdkError = apiError(status);
      const err = asProviderError(sdkError);
      expect({ status: err.status, kind: err.kind }).toEqual({ status, kind });
      expect(err.cause).toBe(sdkError);
      expect(err.message).toContain(`boom ${status}`);
      expect(err.retryAfterMs).toBeUndefined();
    }
    const limited = asProviderError(apiError(429, { 'retry-after': '3' }));
    expect(limited).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterMs: 3000 });
    expect(asProviderError(apiError(429, { 'retry-after-ms': '250', 'retry-after': '9' })).retryAfterMs).toBe(
      250,
    );
    const unreachable = asProviderError(new OpenAI.APIConnectionError({ message: 'Connection error.' }));
    expect(unreachable).toMatchObject({ kind: 'transient', status: undefined });
    expect(unreachable.message).toBe('provider unreachable: Connection error.');
    const plain = new Error('socket hang up');
    expect(toProviderError(plain)).toBe(plain);
  });

  it("a stage's choice of permanent kinds decides: PermanentError, RateLimitedError or a retry, cause kept", () => {
    const uploaderKinds = ['auth', 'not_found', 'rejected'];
    for (const status of [401, 404, 400]) {
      const err = asProviderError(apiError(status));
      const failure = stageFailure(err, uploaderKinds);
      expect(failure).toBeInstanceOf(PermanentError);
      expect((failure as Error).cause).toBe(err);
      // The trainer and the poller name no kind permanent: the same error retries with backoff there.
      expect(stageFailure(err)).toBe(err);
    }
    const limited = asProviderError(apiError(429, { 'retry-after': '2' }));
    const paused = stageFailure(limited, uploaderKinds);
    expect(paused).toBeInstanceOf(RateLimitedError);
    expect((paused as RateLimitedError).retryAfterMs).toBe(2000);
    expect((paused as Error).cause).toBe(limited);
    const outage = asProviderError(apiError(503));
    expect(stageFailure(outage, uploaderKinds)).toBe(outage);
    const plain = new Error('disk full');
    expect(stageFailure(plain, uploaderKinds)).toBe(plain);
  });

  it('names provider requests with bounded operation labels, for OpenAI and Azure paths', () => {
    expect(providerOperation('POST', 'http://h/v1/fine_tuning/jobs')).toBe('jobs.create');
    expect(providerOperation('GET', 'http://h/v1/fine_tuning/jobs?limit=10')).toBe('jobs.list');
    expect(providerOperation('GET', 'http://h/v1/fine_tuning/jobs/ftjob-1')).toBe('jobs.retrieve');
    expect(providerOperation('POST', 'http://h/v1/fine_tuning/jobs/ftjob-1/cancel')).toBe('jobs.cancel');
    expect(providerOperation('GET', 'http://h/openai/fine_tuning/jobs/ftjob-1/events?api-version=x')).toBe(
      'jobs.events',
    );
    expect(providerOperation('GET', 'http://h/v1/fine_tuning/jobs/ftjob-1/checkpoints')).toBe(
      'jobs.checkpoints',
    );
    expect(providerOperation('POST', 'http://h/v1/files')).toBe('files.create');
    expect(providerOperation('GET', 'http://h/v1/files/file-1')).toBe('files.retrieve');
    expect(providerOperation('POST', 'http://h/openai/deployments/m/chat/completions')).toBe(
      'chat.completions',
    );
    expect(providerOperation('PATCH', 'http://h/v1/fine_tuning/jobs/ftjob-1')).toBe('other');
  });

  it('reads Retry-After as an HTTP date too', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(5000);
    expect(retryAfterMs(new Headers(), now)).toBe(1000);
  });
});

describe.each(['openai', 'azure'] as const)('the %s profile against the simulator', (kind) => {
  let sim: RecordingSimulator;
  let provider: ProviderProfile;
  const makeProvider = (extra: Record<string, string> = {}, onRequest?: ProviderRequestObserver) =>
    createProvider(
      parseEnv(
        kind === 'azure'
          ? {
              PROVIDER: 'azure',
              AZURE_OPENAI_ENDPOINT: sim.baseUrl,
              AZURE_OPENAI_API_KEY: 'sk-sim',
              PROVIDER_WEBHOOK_SECRET: SECRET,
              ...extra,
            }
          : { PROVIDER: 'simulator', SIMULATOR_URL: sim.url, PROVIDER_WEBHOOK_SECRET: SECRET, ...extra },
      ),
      onRequest ? { onRequest } : {},
    );

  beforeAll(async () => {
    sim = await startRecordingSimulator({ seed: kind === 'azure' ? 21 : 20, speed: 2000 });
    provider = makeProvider();
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('uploads (buffer and stream), finds by name and size, waits until processed', async () => {
    const content = Buffer.from(trainingJsonl(12));
    const uploaded = await provider.uploadFile({ filename: 'ds-abc.jsonl', content, size: content.length });
    expect(uploaded).toMatchObject({ filename: 'ds-abc.jsonl', bytes: content.length, purpose: 'fine-tune' });
    expect(await provider.findFileByNameAndSize('ds-abc.jsonl', content.length)).toMatchObject({
      id: uploaded.id,
    });
    expect(await provider.findFileByNameAndSize('ds-abc.jsonl', content.length + 1)).toBeNull();
    expect((await provider.waitUntilProcessed(uploaded.id, { timeoutMs: 5_000 })).status).toBe('processed');

    const streamed = await provider.uploadFile({
      filename: 'ds-stream.jsonl',
      content: Readable.from([content.subarray(0, 100), content.subarray(100)]),
      size: content.length,
    });
    expect(streamed.bytes).toBe(content.length);
    await expect(provider.waitUntilProcessed('file-missing', { timeoutMs: 1_000 })).rejects.toMatchObject({
      name: 'ProviderError',
      kind: 'not_found',
      status: 404,
    });
  });

  it('creates a job with metadata, finds it again, follows it to success and reads events and checkpoints', async () => {
    const file = await processedTrainingFile(provider, 'ds-job.jsonl', 12);
    const tag = `ft-${kind}-1`;
    const job = await provider.createJob({
      model: 'gpt-4o-mini-2024-07-18',
      trainingFile: file.id,
      suffix: 'abc123',
      hyperparameters: { n_epochs: 2 },
      metadata: { fine_tune_id: tag },
    });
    expect(job.metadata).toEqual({ fine_tune_id: tag });
    expect(await provider.findJobByMetadata('fine_tune_id', tag)).toMatchObject({ id: job.id });
    expect(await provider.findJobByMetadata('fine_tune_id', 'nobody')).toBeNull();
    expect((await provider.listJobs({ metadata: { fine_tune_id: tag } })).data.map((j) => j.id)).toEqual([
      job.id,
    ]);
    const firstPage = await provider.listJobs({ limit: 1 });
    expect(firstPage.data).toHaveLength(1);

    let current = job;
    for (let i = 0; i < 500 && !['succeeded', 'failed', 'cancelled'].includes(current.status); i++) {
      await new Promise((r) => setTimeout(r, 10));
      current = await provider.retrieveJob(job.id);
    }
    expect(current.status).toBe('succeeded');
    expect(current.trained_tokens).toBeGreaterThan(0);
    const events = await provider.listEvents(job.id, { limit: 2 });
    expect(events.data.map((e) => e.message)[0]).toBe('The job has successfully completed');
    expect(events.hasMore).toBe(true);
    const next = await provider.listEvents(job.id, { after: events.data[1]!.id, limit: 100 });
    expect(next.data.at(-1)!.message).toBe(`Created fine-tuning job: ${job.id}`);
    const checkpoints = await provider.listCheckpoints(job.id);
    expect(checkpoints.data.map((c) => c.step_number)).toEqual([24, 12]);

    const chat = await provider.chatCompletion({
      model: current.fine_tuned_model!,
      messages: [
        { role: 'system', content: 'Extract the invoice fields as JSON.' },
        { role: 'user', content: 'Invoice 503 total 9.00 USD from vendor 3' },
      ],
    });
    expect(chat.content).toBe(JSON.stringify({ invoice_number: '503', total: '9.00' }));
    expect(chat.usage.totalTokens).toBe(chat.usage.promptTokens + chat.usage.completionTokens);
  });

  it('cancels a job', async () => {
    const file = await processedTrainingFile(provider, 'ds-cancel.jsonl', 10);
    const job = await provider.createJob({
      model: 'gpt-4o-mini-2024-07-18',
      trainingFile: file.id,
      metadata: { fine_tune_id: `ft-${kind}-c` },
    });
    expect((await provider.cancelJob(job.id)).status).toBe('cancelled');
    await expect(provider.cancelJob(job.id)).rejects.toMatchObject({ kind: 'rejected', status: 400 });
  });

  it('reports a 400 as rejected with the provider message, and a 404 as not_found', async () => {
    const err = await provider
      .createJob({ model: 'gpt-unknown', trainingFile: 'file-x', metadata: { fine_tune_id: 'x' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: 'rejected', status: 400 });
    expect((err as Error).message).toMatch(/400.*gpt-unknown is not available for fine-tuning/);
    expect((err as Error).cause).toBeInstanceOf(OpenAI.BadRequestError);
    await expect(provider.retrieveJob('ftjob-missing')).rejects.toMatchObject({
      kind: 'not_found',
      status: 404,
    });
  });

  it('reports a 429 as rate_limited carrying Retry-After', async () => {
    const noRetries = makeProvider({ PROVIDER_MAX_RETRIES: '0' });
    sim.admin.setFaults({ rate429: 1, retryAfterSeconds: 4 });
    try {
      const err = await noRetries.retrieveJob('ftjob-any').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterMs: 4000 });
    } finally {
      sim.admin.setFaults({});
    }
  });

  it('counts every HTTP request, SDK retries included, by operation and status for /metrics', async () => {
    const metrics = createMetrics('test');
    const counting = makeProvider({ PROVIDER_MAX_RETRIES: '2' }, metrics.countProviderRequest);
    await processedTrainingFile(counting, 'ds-metrics.jsonl', 10);
    sim.admin.setFaults({ seed: 3, rate500: 1 });
    try {
      await expect(counting.retrieveJob('ftjob-metrics')).rejects.toThrow();
    } finally {
      sim.admin.setFaults({});
    }
    const samples = (await metrics.providerRequests.get()).values;
    const count = (operation: string, status: string) =>
      samples.find((v) => v.labels.operation === operation && v.labels.status === status)?.value ?? 0;
    expect(count('files.create', '200')).toBe(1);
    expect(count('files.retrieve', '200')).toBeGreaterThanOrEqual(1);
    // One try plus PROVIDER_MAX_RETRIES retries, each a request of its own.
    expect(count('jobs.retrieve', '500')).toBe(3);
    // Ids never become label values.
    expect(samples.every((v) => !String(v.labels.operation).includes('ftjob'))).toBe(true);
  });

  it('creates with SDK retries off even when other calls retry; 5xx stays retryable', async () => {
    const file = await processedTrainingFile(provider, 'ds-retry.jsonl', 10);
    const retrying = makeProvider({ PROVIDER_MAX_RETRIES: '2' });
    sim.admin.setFaults({ seed: 1, rate500: 1 });
    try {
      const before = sim.admin.state().faultLog.length;
      const err = await retrying
        .createJob({
          model: 'gpt-4o-mini-2024-07-18',
          trainingFile: file.id,
          metadata: { fine_tune_id: 'r' },
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'transient', status: 500 });
      expect((err as Error).cause).toBeInstanceOf(OpenAI.InternalServerError);
      expect(sim.admin.state().faultLog.length - before).toBe(1);
    } finally {
      sim.admin.setFaults({});
    }
  });

  it('verifies webhooks with the configured secret', async () => {
    const body = JSON.stringify({
      id: 'evt_1',
      object: 'event',
      created_at: 1,
      type: 'fine_tuning.job.succeeded',
      data: { id: 'ftjob-1' },
    });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'wh_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signWebhook(SECRET, 'wh_1', ts, body),
    };
    expect(await provider.unwrapWebhook(body, headers)).toMatchObject({
      type: 'fine_tuning.job.succeeded',
      data: { id: 'ftjob-1' },
    });
    expect(await provider.unwrapWebhook(body, new Headers(headers))).toMatchObject({ id: 'evt_1' });
    await expect(provider.unwrapWebhook(body.replace('ftjob-1', 'ftjob-2'), headers)).rejects.toThrow(
      WebhookVerificationError,
    );
  });

  it('got only answers that conform to the OpenAPI document', () => {
    const { checked, failures, unmapped } = loadConformanceChecker().check(sim.recorded);
    expect(unmapped).toEqual([]);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});
