// The provider profile for Together AI on its official `together-ai` package. Together's fine-tuning
// API is its own (`/fine-tunes`, its own statuses, its own upload, `token_count`/`total_price` on the
// job): this profile maps it onto the OpenAI-shaped records every stage reads, so the uploader, trainer
// and poller stay provider-agnostic. Inference is OpenAI-compatible (`chat.completions`).
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import Together, { APIError as TogetherAPIError } from 'together-ai';
import type { FileResponse } from 'together-ai/resources/files';
import type { FinetuneEvent, FinetuneResponse } from 'together-ai/resources/fine-tuning';
import type { ProviderSettings } from './config.ts';
import { ProviderError, providerErrorKind, retryAfterMs, WebhookVerificationError } from './errors.ts';
import type * as P from './profile.ts';
import { mapStreamErrors, toChatCompletionResult, waitForProcessedFile } from './profile.ts';

/** Together's job statuses (its API reference), each with the fine-tune status it means for us. */
export const TOGETHER_JOB_STATUSES = {
  pending: 'validating_files',
  queued: 'queued',
  running: 'running',
  // Training is over but the model is not usable yet: still running as far as we are concerned.
  compressing: 'running',
  uploading: 'running',
  // Stays alive until Together says `cancelled` (it may still complete).
  cancel_requested: 'running',
  cancelled: 'cancelled',
  error: 'failed',
  completed: 'succeeded',
} as const satisfies Record<string, P.ProviderJob['status']>;

export type TogetherJobStatus = keyof typeof TOGETHER_JOB_STATUSES;

/** A status the profile does not know: never guessed at, so the job is neither settled nor lost. */
export class UnknownProviderStatusError extends Error {
  override name = 'UnknownProviderStatusError';
}

/** Together's job status as the OpenAI-shaped status the stages read; unknown statuses throw. */
export function togetherJobStatus(status: string): P.ProviderJob['status'] {
  if (!Object.hasOwn(TOGETHER_JOB_STATUSES, status)) {
    throw new UnknownProviderStatusError(
      `together: unknown fine-tune status "${status}" (known: ${Object.keys(TOGETHER_JOB_STATUSES).join(', ')}); update the together profile`,
    );
  }
  return TOGETHER_JOB_STATUSES[status as TogetherJobStatus];
}

/** Together's default learning rate: `learning_rate_multiplier` scales it. */
export const TOGETHER_BASE_LEARNING_RATE = 0.00001;

/**
 * Together jobs carry no metadata. The trainer's tag (`fine_tune_id`) rides in the job's `suffix`
 * (`<suffix>-ft<id>`, Together allows 64 characters), which the job list returns, so a lost create can
 * still be found.
 */
export function taggedSuffix(suffix: string | null | undefined, metadata: Record<string, string>): string {
  const tag = Object.values(metadata).join('-');
  const full = suffix ? `${suffix}-tl-${tag}` : `tl-${tag}`;
  if (full.length > 64)
    throw new ProviderError('rejected', `together: suffix "${full}" exceeds 64 characters`);
  return full;
}

const FILE_STATUS = (file: FileResponse): P.ProviderFile['status'] => {
  const status = file.processing_status;
  if (status === 'FAILED' || status === 'INVALID_FORMAT') return 'error';
  if (status === 'COMPLETED' || (status === undefined && file.Processed)) return 'processed';
  return 'uploaded';
};

const toUnix = (iso: string | undefined | null): number | null => {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
};

type TogetherJob = Partial<FinetuneResponse> & Pick<FinetuneResponse, 'id' | 'status'> & { suffix?: string };

/** What `fine_tuned_model` is for a finished Together job: the name inference calls. */
function fineTunedModel(job: TogetherJob): string | null {
  return job.status === 'completed' ? (job.model_output_name ?? null) : null;
}

export class TogetherProviderProfile implements P.ProviderProfile {
  readonly kind = 'together' as const;

  constructor(
    private readonly client: Together,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** Together's job as the OpenAI-shaped record the stages read. */
  toJob(job: TogetherJob): P.ProviderJob {
    const status = togetherJobStatus(job.status);
    const finished = ['completed', 'cancelled', 'error'].includes(job.status);
    const lastError = job.events?.filter((e) => e.type === 'job_error').at(-1);
    return {
      object: 'fine_tuning.job',
      id: job.id,
      model: job.model ?? '',
      created_at: toUnix(job.created_at) ?? 0,
      finished_at: finished ? toUnix(job.updated_at) : null,
      fine_tuned_model: fineTunedModel(job),
      organization_id: job.user_id ?? '',
      result_files: [],
      status,
      training_file: job.training_file ?? '',
      validation_file: job.validation_file ?? null,
      hyperparameters: {
        n_epochs: job.n_epochs ?? 'auto',
        batch_size: typeof job.batch_size === 'number' ? job.batch_size : 'auto',
        learning_rate_multiplier:
          typeof job.learning_rate === 'number' ? job.learning_rate / TOGETHER_BASE_LEARNING_RATE : 'auto',
      },
      // Together bills the tokens it processed (epochs × training + evals × validation): that is
      // what it reports as `token_count`, once tokenization is done.
      trained_tokens: typeof job.token_count === 'number' ? job.token_count : null,
      error:
        job.status === 'error'
          ? {
              code: 'together_job_error',
              message: lastError?.message ?? 'Together reported an error',
              param: null,
            }
          : null,
      seed: 0,
      estimated_finish: null,
      metadata: null,
      user_provided_suffix: job.suffix ?? null,
      integrations: [],
      // Together's own figures, for whoever wants the provider's price.
      ...({ total_price: job.total_price ?? null } as object),
    } as P.ProviderJob;
  }

  private toFile(file: FileResponse): P.ProviderFile {
    const status = FILE_STATUS(file);
    return {
      object: 'file',
      id: file.id,
      bytes: file.bytes,
      created_at: file.created_at,
      filename: file.filename,
      purpose: 'fine-tune',
      status,
      ...(status === 'error' ? { status_details: file.validation_report?.error ?? 'invalid format' } : {}),
    } as P.ProviderFile;
  }

  /**
   * Together's upload (`POST /files/upload`, multipart: purpose, file_name, file_type, file) through the
   * SDK's client. The SDK's own `files.upload` helper takes a path on disk and reads its base URL from
   * the environment at import, so the request is built here; a stream is sent as it is read.
   */
  uploadFile({ filename, content, size }: P.UploadFileInput): Promise<P.ProviderFile> {
    return withTogetherErrors(async () => {
      const boundary = `----tuneline${randomBytes(12).toString('hex')}`;
      const field = (name: string, value: string) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
      const head = Buffer.from(
        field('purpose', 'fine-tune') +
          field('file_name', filename) +
          field('file_type', 'jsonl') +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename.replace(/"/g, '')}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      );
      const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
      const buffered = Buffer.isBuffer(content);
      const body = buffered
        ? Buffer.concat([head, content, tail])
        : Readable.from(
            (async function* () {
              yield head;
              for await (const chunk of content as Readable) yield chunk as Buffer;
              yield tail;
            })(),
          );
      const file = await this.client.post<FileResponse>('/files/upload', {
        body: buffered ? body : (body as unknown as AsyncIterable<Uint8Array>),
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          ...(buffered ? {} : { 'content-length': String(head.length + size + tail.length) }),
        },
        // A stream cannot be replayed.
        ...(buffered ? {} : { maxRetries: 0 }),
      });
      return this.toFile(file);
    });
  }

  findFileByNameAndSize(filename: string, size: number): Promise<P.ProviderFile | null> {
    return withTogetherErrors(async () => {
      const { data } = await this.client.files.list();
      const sorted = [...data].sort((a, b) => b.created_at - a.created_at);
      const found = sorted.find(
        (f) =>
          f.filename === filename &&
          f.bytes === size &&
          f.purpose === 'fine-tune' &&
          FILE_STATUS(f) !== 'error',
      );
      return found ? this.toFile(found) : null;
    });
  }

  waitUntilProcessed(fileId: string, opts: { timeoutMs?: number } = {}): Promise<P.ProviderFile> {
    return waitForProcessedFile(
      fileId,
      async () => this.toFile(await withTogetherErrors(() => this.client.files.retrieve(fileId))),
      opts,
    );
  }

  createJob(input: P.CreateJobInput): Promise<P.ProviderJob> {
    return withTogetherErrors(async () => {
      const hp = input.hyperparameters ?? {};
      const job = await this.client.fineTuning.create(
        {
          model: input.model,
          training_file: input.trainingFile,
          ...(input.validationFile ? { validation_file: input.validationFile, n_evals: 1 } : {}),
          suffix: taggedSuffix(input.suffix, input.metadata),
          ...(typeof hp.n_epochs === 'number' ? { n_epochs: hp.n_epochs } : {}),
          ...(typeof hp.batch_size === 'number' ? { batch_size: hp.batch_size } : {}),
          ...(typeof hp.learning_rate_multiplier === 'number'
            ? { learning_rate: hp.learning_rate_multiplier * TOGETHER_BASE_LEARNING_RATE }
            : {}),
          ...(input.seed !== undefined ? { random_seed: input.seed } : {}),
          training_method: { method: 'sft', train_on_inputs: 'auto' },
        },
        // Creating a job is not idempotent at the provider: never let the SDK repeat it.
        { maxRetries: 0 },
      );
      return this.toJob(job as TogetherJob);
    });
  }

  findJobByMetadata(key: string, value: string): Promise<P.ProviderJob | null> {
    return withTogetherErrors(async () => {
      const { data } = await this.client.fineTuning.list();
      const ending = `tl-${value}`;
      const found = data.find((j) => {
        const suffix = (j as TogetherJob).suffix ?? '';
        return suffix === ending || suffix.endsWith(`-${ending}`);
      });
      void key; // The tag holds the values only (one key: fine_tune_id).
      return found ? this.toJob(found as TogetherJob) : null;
    });
  }

  retrieveJob(jobId: string): Promise<P.ProviderJob> {
    return withTogetherErrors(async () => this.toJob(await this.client.fineTuning.retrieve(jobId)));
  }

  /** Together lists every job at once (newest first): `after` and `limit` are applied here. */
  listJobs(
    opts: { after?: string; limit?: number; metadata?: Record<string, string> } = {},
  ): Promise<P.Page<P.ProviderJob>> {
    return withTogetherErrors(async () => {
      let data = (await this.client.fineTuning.list()).data as TogetherJob[];
      if (opts.metadata) {
        const values = Object.values(opts.metadata).join('-');
        data = data.filter((j) => (j.suffix ?? '').endsWith(`tl-${values}`));
      }
      if (opts.after) {
        const at = data.findIndex((j) => j.id === opts.after);
        data = at >= 0 ? data.slice(at + 1) : data;
      }
      const limit = opts.limit ?? data.length;
      return { data: data.slice(0, limit).map((j) => this.toJob(j)), hasMore: data.length > limit };
    });
  }

  /** Together's events carry no id: each gets one derived from its content, so re-reading dedupes. */
  listEvents(
    jobId: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<P.Page<P.ProviderJobEvent>> {
    return withTogetherErrors(async () => {
      const { data } = await this.client.fineTuning.listEvents(jobId);
      const events = data.map((e, i) => toEvent(jobId, e, i)).reverse();
      const start = opts.after ? events.findIndex((e) => e.id === opts.after) + 1 : 0;
      const limit = opts.limit ?? 100;
      return { data: events.slice(start, start + limit), hasMore: events.length > start + limit };
    });
  }

  listCheckpoints(
    jobId: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<P.Page<P.ProviderCheckpoint>> {
    return withTogetherErrors(async () => {
      const [{ data }, job] = await Promise.all([
        this.client.fineTuning.listCheckpoints(jobId),
        this.client.fineTuning.retrieve(jobId),
      ]);
      const name = job.model_output_name ?? jobId;
      const checkpoints: P.ProviderCheckpoint[] = data.map((c) => ({
        object: 'fine_tuning.job.checkpoint',
        id: `${jobId}:${c.step}`,
        created_at: toUnix(c.created_at) ?? 0,
        // Together names a checkpoint `<output model>:<step>` (usable as `from_checkpoint`).
        fine_tuned_model_checkpoint: `${name}:${c.step}`,
        fine_tuning_job_id: jobId,
        step_number: c.step,
        metrics: {},
      }));
      const start = opts.after ? checkpoints.findIndex((c) => c.id === opts.after) + 1 : 0;
      const limit = opts.limit ?? 100;
      return { data: checkpoints.slice(start, start + limit), hasMore: checkpoints.length > start + limit };
    });
  }

  cancelJob(jobId: string): Promise<P.ProviderJob> {
    return withTogetherErrors(async () =>
      this.toJob((await this.client.fineTuning.cancel(jobId)) as TogetherJob),
    );
  }

  chatCompletion(input: P.ChatCompletionInput): Promise<P.ChatCompletionResult> {
    return withTogetherErrors(async () => {
      const res = await this.client.chat.completions.create({
        model: input.model,
        messages: input.messages.map((m) => ({
          role: m.role === 'developer' ? 'system' : m.role,
          content: m.content,
        })),
        ...(input.maxTokens !== undefined ? { max_tokens: input.maxTokens } : {}),
        ...(input.temperature !== undefined ? { temperature: input.temperature } : {}),
      });
      return toChatCompletionResult(res);
    });
  }

  /**
   * Together's chat completions are OpenAI-compatible: the gateway's body goes out unchanged through
   * the SDK's client and the answer comes back as Together sent it.
   */
  createChatCompletion(
    params: P.ChatCompletionParams,
    opts: { signal?: AbortSignal } = {},
  ): Promise<P.ChatCompletionBody> {
    return withTogetherErrors(() =>
      this.client.post<P.ChatCompletionBody>('/chat/completions', {
        body: params,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
  }

  async streamChatCompletion(
    params: P.ChatCompletionStreamParams,
    opts: { signal?: AbortSignal } = {},
  ): Promise<AsyncIterable<P.ChatCompletionChunk>> {
    // The SDK parses Together's server-sent events (OpenAI's chunk shape) into an async iterable.
    const stream = (await withTogetherErrors(() =>
      this.client.chat.completions.create(params as never, opts.signal ? { signal: opts.signal } : {}),
    )) as unknown as AsyncIterable<P.ChatCompletionChunk>;
    return mapStreamErrors(stream, toTogetherProviderError);
  }

  /** Together sends no webhooks: the adaptive polling follows its jobs. */
  async unwrapWebhook(): Promise<P.ProviderWebhookEvent> {
    throw new WebhookVerificationError('the together provider sends no webhooks');
  }

  /** Deletes an uploaded file at Together. */
  async deleteFile(fileId: string): Promise<void> {
    try {
      await withTogetherErrors(async () => {
        await this.client.files.delete(fileId);
      });
    } catch (err) {
      if (!(err instanceof ProviderError && err.kind === 'not_found')) throw err;
    }
  }

  /** Together deletes a fine-tune's outputs by its job (`DELETE /fine-tunes/{id}`). */
  async deleteModel(model: string, jobId: string | null): Promise<void> {
    if (!jobId) throw new ProviderError('rejected', `together: cannot delete ${model} without its job id`);
    try {
      await withTogetherErrors(async () => {
        await this.client.fineTuning.delete(jobId);
      });
    } catch (err) {
      if (!(err instanceof ProviderError && err.kind === 'not_found')) throw err;
    }
  }

  /** The fetch the client uses (kept for tests that count requests). */
  get fetch(): typeof fetch {
    return this.fetchImpl;
  }
}

function toEvent(jobId: string, e: FinetuneEvent, index: number): P.ProviderJobEvent {
  const digest = createHash('sha256')
    .update([jobId, index, e.created_at, e.type, e.message].join('\u0000'))
    .digest('hex')
    .slice(0, 24);
  const level = e.level === 'error' ? 'error' : e.level === 'warning' ? 'warn' : 'info';
  return {
    object: 'fine_tuning.job.event',
    id: `tev-${digest}`,
    created_at: toUnix(e.created_at) ?? 0,
    level,
    message: e.message,
    type: 'message',
    data: {
      together_type: e.type,
      ...(e.step !== undefined ? { step: e.step } : {}),
      ...(e.token_count !== undefined ? { token_count: e.token_count } : {}),
    },
  };
}

/** The Together SDK's errors as `ProviderError`s (same kinds as the OpenAI profile's). */
export function toTogetherProviderError(err: unknown): unknown {
  if (!(err instanceof TogetherAPIError)) return err;
  const status = err.status;
  const kind = providerErrorKind(status);
  if (kind === 'rate_limited') {
    return new ProviderError(kind, `provider rate limit (429): ${err.message}`, {
      status,
      retryAfterMs: retryAfterMs(err.headers),
      cause: err,
    });
  }
  if (kind === 'transient') {
    return new ProviderError(
      kind,
      status === undefined
        ? `provider unreachable: ${err.message}`
        : `provider error (${status}): ${err.message}`,
      { ...(status === undefined ? {} : { status }), cause: err },
    );
  }
  return new ProviderError(kind, `provider rejected the request (${status}): ${err.message}`, {
    status,
    cause: err,
  });
}

async function withTogetherErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toTogetherProviderError(err);
  }
}

export function createTogetherProfile(
  settings: Extract<ProviderSettings, { kind: 'together' }>,
  opts: { fetch?: typeof fetch } = {},
): TogetherProviderProfile {
  const fetchImpl = opts.fetch ?? fetch;
  const client = new Together({
    apiKey: settings.apiKey,
    ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
    maxRetries: settings.common.maxRetries,
    timeout: settings.common.timeoutMs,
    fetch: fetchImpl,
  });
  return new TogetherProviderProfile(client, fetchImpl);
}
