// The together profile against the simulator's Together dialect, through the official `together-ai`
// SDK over HTTP: upload, job, statuses, events, checkpoints, tokens and price, cancel, errors, chat.
import { Readable } from 'node:stream';
import {
  createProvider,
  ProviderError,
  providerEnvSchema,
  providerOperation,
  resolveProviderSettings,
  TOGETHER_JOB_STATUSES,
  type TogetherProviderProfile,
  taggedSuffix,
  togetherJobStatus,
  UnknownProviderStatusError,
} from '@tuneline/provider';
import { type RunningSimulator, startSimulator, TOGETHER_STATUSES } from '@tuneline/simulator';
import Together from 'together-ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobReaching, processedTrainingFile, trainingJsonl } from './support.ts';

const MODEL = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference';

let sim: RunningSimulator;
let provider: TogetherProviderProfile;
let requests: Array<{ operation: string; status: string }>;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 20, speed: 2_000 });
  requests = [];
  provider = createProvider(
    providerEnvSchema.parse({
      PROVIDER: 'together',
      TOGETHER_API_KEY: sim.apiKey,
      TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
    }),
    { onRequest: (operation, status) => requests.push({ operation, status }) },
  ) as TogetherProviderProfile;
});

afterAll(async () => {
  await sim?.close();
});

describe('choosing together from env', () => {
  it('is picked by PROVIDER=together or a lone TOGETHER_API_KEY, and needs its key', () => {
    expect(resolveProviderSettings(providerEnvSchema.parse({ TOGETHER_API_KEY: 'tk' }))).toMatchObject({
      kind: 'together',
      apiKey: 'tk',
    });
    expect(() => resolveProviderSettings(providerEnvSchema.parse({ PROVIDER: 'together' }))).toThrow(
      /PROVIDER=together needs TOGETHER_API_KEY/,
    );
    expect(provider.kind).toBe('together');
  });
});

describe('status mapping', () => {
  it('maps every Together status (the simulator dialect, all of them) to a fine-tune status', () => {
    expect(Object.keys(TOGETHER_JOB_STATUSES).sort()).toEqual([...TOGETHER_STATUSES].sort());
    // Which Together statuses each fine-tune status stands for.
    const mappedTo: Record<string, string[]> = {};
    for (const s of [...TOGETHER_STATUSES].sort()) {
      const status = togetherJobStatus(s);
      mappedTo[status] = [...(mappedTo[status] ?? []), s];
    }
    expect(mappedTo).toEqual({
      validating_files: ['pending'],
      queued: ['queued'],
      running: ['cancel_requested', 'compressing', 'running', 'uploading'],
      cancelled: ['cancelled'],
      failed: ['error'],
      succeeded: ['completed'],
    });
  });

  it('fails clearly on a status it does not know', () => {
    expect(() => togetherJobStatus('hibernating')).toThrow(UnknownProviderStatusError);
    expect(() => togetherJobStatus('hibernating')).toThrow(/unknown fine-tune status "hibernating"/);
    expect(() => togetherJobStatus('toString')).toThrow(UnknownProviderStatusError);
  });

  it('tags the suffix with the metadata and refuses one over 64 characters', () => {
    expect(taggedSuffix('inv', { fine_tune_id: 'ft_1' })).toBe('inv-tl-ft_1');
    expect(taggedSuffix(null, { fine_tune_id: 'ft_1' })).toBe('tl-ft_1');
    expect(() => taggedSuffix('x'.repeat(60), { fine_tune_id: 'ft_1' })).toThrow(ProviderError);
  });

  it('names Together requests for metrics', () => {
    expect(providerOperation('POST', 'http://h/together/v1/files/upload')).toBe('files.create');
    expect(providerOperation('POST', 'http://h/together/v1/fine-tunes')).toBe('jobs.create');
    expect(providerOperation('GET', 'http://h/together/v1/fine-tunes/ft-1/events')).toBe('jobs.events');
    expect(providerOperation('GET', 'http://h/together/v1/fine-tunes/ft-1')).toBe('jobs.retrieve');
  });
});

describe('the together profile against the simulator', () => {
  it('uploads (buffer and stream), trains to completed with tokens and price, and serves the model', async () => {
    const body = trainingJsonl(12, 700);
    const file = await provider.uploadFile({
      filename: 'train-tg.jsonl',
      content: Buffer.from(body),
      size: Buffer.byteLength(body),
    });
    expect(file.id).toMatch(/^file-/);
    const streamed = await provider.uploadFile({
      filename: 'test-tg.jsonl',
      content: Readable.from([Buffer.from(trainingJsonl(10, 700))]),
      size: Buffer.byteLength(trainingJsonl(10, 700)),
    });
    expect(streamed.bytes).toBe(Buffer.byteLength(trainingJsonl(10, 700)));
    const processed = await provider.waitUntilProcessed(file.id, { timeoutMs: 10_000 });
    expect(processed.status).toBe('processed');
    await provider.waitUntilProcessed(streamed.id, { timeoutMs: 10_000 });
    expect(await provider.findFileByNameAndSize('train-tg.jsonl', Buffer.byteLength(body))).toMatchObject({
      id: file.id,
    });
    expect(await provider.findFileByNameAndSize('train-tg.jsonl', 1)).toBeNull();

    const job = await provider.createJob({
      model: MODEL,
      trainingFile: file.id,
      validationFile: streamed.id,
      suffix: 'inv',
      hyperparameters: { n_epochs: 2 },
      metadata: { fine_tune_id: 'ft_tg_1' },
    });
    expect(job.status).toBe('validating_files');
    expect(sim.admin.together().jobs.find((j) => j.id === job.id)?.suffix).toBe('inv-tl-ft_tg_1');
    expect((await provider.findJobByMetadata('fine_tune_id', 'ft_tg_1'))?.id).toBe(job.id);
    expect(await provider.findJobByMetadata('fine_tune_id', 'ft_tg_none')).toBeNull();

    const seen = new Set<string>();
    const done = await jobReaching(
      provider,
      job.id,
      'succeeded',
      20_000,
      'the together job to complete',
      (s) => seen.add(s),
    );
    expect(done.fine_tuned_model).toMatch(
      /^tuneline-sim\/Meta-Llama-3\.1-8B-Instruct-Reference-inv-tl-ft_tg_1-/,
    );
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(done.finished_at).not.toBeNull();
    // Through the raw SDK: token_count is what the profile reports as trained tokens, and a price is there.
    const raw = await new Together({
      apiKey: sim.apiKey,
      baseURL: `${sim.baseUrl}/together/v1`,
    }).fineTuning.retrieve(job.id);
    expect(raw.status).toBe('completed');
    expect(raw.token_count).toBe(done.trained_tokens);
    expect(raw.total_price).toBeGreaterThan(0);

    const events = await provider.listEvents(job.id, { limit: 100 });
    expect(events.data.length).toBeGreaterThan(3);
    expect(new Set(events.data.map((e) => e.id)).size).toBe(events.data.length);
    expect((await provider.listEvents(job.id, { limit: 100 })).data.map((e) => e.id)).toEqual(
      events.data.map((e) => e.id),
    );
    const checkpoints = await provider.listCheckpoints(job.id);
    expect(checkpoints.data).toHaveLength(1);
    expect(checkpoints.data[0]?.fine_tuned_model_checkpoint).toBe(
      `${done.fine_tuned_model}:${checkpoints.data[0]?.step_number}`,
    );

    const listed = await provider.listJobs({ limit: 100 });
    expect(listed.data.map((j) => j.id)).toContain(job.id);

    const answer = await provider.chatCompletion({
      model: done.fine_tuned_model ?? '',
      messages: [
        { role: 'system', content: 'Extract the invoice fields as JSON.' },
        { role: 'user', content: 'Invoice 703 total 9.00 USD from vendor 3' },
      ],
    });
    expect(answer.content.length).toBeGreaterThan(0);
    expect(answer.usage.promptTokens).toBeGreaterThan(0);

    await provider.deleteFile(file.id);
    expect(sim.admin.together().files.map((f) => f.id)).not.toContain(file.id);
    expect(requests.some((r) => r.operation === 'jobs.create' && r.status === '200')).toBe(true);
  });

  it('streams a chat completion the way Together does: per-token chunks, usage on the last one', async () => {
    const client = new Together({ apiKey: sim.apiKey, baseURL: `${sim.baseUrl}/together/v1`, maxRetries: 0 });
    const messages = [
      { role: 'system' as const, content: 'Extract the invoice fields as JSON.' },
      { role: 'user' as const, content: 'Invoice 703 total 12.00 EUR from vendor 0' },
    ];
    const whole = await client.chat.completions.create({ model: MODEL, messages });
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    const chunks: Together.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.length).toBeGreaterThan(2);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    for (const c of chunks) {
      expect(c).toMatchObject({ object: 'chat.completion.chunk', model: MODEL });
      // Together repeats the role on every delta and never sends a chunk without its choice.
      expect(c.choices).toHaveLength(1);
      expect(c.choices[0]!.delta.role).toBe('assistant');
    }
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toBe(
      whole.choices[0]!.message?.content,
    );
    // Usage rides on the last chunk, the one with the finish reason, unasked; every other chunk has null.
    const last = chunks.at(-1)!;
    expect(last.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    expect(last.usage).toMatchObject({
      prompt_tokens: whole.usage!.prompt_tokens,
      completion_tokens: whole.usage!.completion_tokens,
      total_tokens: whole.usage!.total_tokens,
    });
    for (const c of chunks.slice(0, -1)) {
      expect(c.usage).toBeNull();
      expect(c.choices[0]!.finish_reason).toBeNull();
    }

    // The profile's stream (what the gateway reads, with include_usage asked) ends with that usage too.
    const viaProfile: Array<{ usage?: unknown }> = [];
    for await (const c of await provider.streamChatCompletion({
      model: MODEL,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    }))
      viaProfile.push(c);
    expect(viaProfile.at(-1)?.usage).toMatchObject({ completion_tokens: whole.usage!.completion_tokens });

    // A stream the provider breaks mid-way fails as a transient provider error (the socket's own error
    // as its cause, as in the OpenAI profile), never ends as a silent short answer.
    sim.admin.setFaults({ streamBreakAfter: 2 });
    try {
      const broken = await provider.streamChatCompletion({ model: MODEL, messages, stream: true });
      await expect(
        (async () => {
          for await (const _ of broken) {
            // read to the break
          }
        })(),
      ).rejects.toMatchObject({
        name: 'ProviderError',
        kind: 'transient',
        message: expect.stringMatching(/^provider stream broke: .*terminated/),
      });
    } finally {
      sim.admin.setFaults({});
    }
  });

  it('cancels through cancel_requested to cancelled, and reports an errored job as failed', async () => {
    const file = await processedTrainingFile(provider, 'c.jsonl', 10, { first: 700, timeoutMs: 10_000 });
    const job = await provider.createJob({
      model: MODEL,
      trainingFile: file.id,
      metadata: { fine_tune_id: 'ft_c' },
    });
    const cancelling = await provider.cancelJob(job.id);
    expect(cancelling.status).toBe('running');
    const cancelled = await jobReaching(provider, job.id, 'cancelled', 10_000, 'cancelled');
    expect(cancelled.fine_tuned_model).toBeNull();

    const other = await provider.createJob({
      model: MODEL,
      trainingFile: file.id,
      metadata: { fine_tune_id: 'ft_e' },
    });
    sim.admin.forceOutcome(other.id, 'fail');
    const failed = await provider.retrieveJob(other.id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toMatch(/exited with an error/);
  });

  it('turns Together errors into typed ProviderErrors', async () => {
    await expect(provider.retrieveJob('ft-missing')).rejects.toMatchObject({
      kind: 'not_found',
      status: 404,
    });
    await expect(
      provider.createJob({ model: 'no/such-model', trainingFile: 'file-x', metadata: { fine_tune_id: 'x' } }),
    ).rejects.toMatchObject({ kind: 'rejected', status: 400 });
    const bad = 'not json\n';
    const file = await provider.uploadFile({
      filename: 'bad.jsonl',
      content: Buffer.from(bad),
      size: bad.length,
    });
    await expect(provider.waitUntilProcessed(file.id, { timeoutMs: 10_000 })).rejects.toMatchObject({
      kind: 'rejected',
    });
    const wrongKey = createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'together',
        TOGETHER_API_KEY: 'wrong',
        TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
        PROVIDER_MAX_RETRIES: '0',
      }),
    );
    await expect(wrongKey.listJobs()).rejects.toMatchObject({ kind: 'auth', status: 401 });
    sim.admin.setFaults({ rate429: 1, retryAfterSeconds: 2 });
    try {
      const noRetry = createProvider(
        providerEnvSchema.parse({
          PROVIDER: 'together',
          TOGETHER_API_KEY: sim.apiKey,
          TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
          PROVIDER_MAX_RETRIES: '0',
        }),
      );
      const err = await noRetry.listJobs().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ kind: 'rate_limited', retryAfterMs: 2_000 });
    } finally {
      sim.admin.setFaults({});
    }
  });
});
