// The provider profile on the official `openai` package: OpenAI, Azure OpenAI (AzureOpenAI) and the
// simulator all speak the same API, so one implementation serves the three.
import { Readable } from 'node:stream';
import OpenAI, { AzureOpenAI, toFile, toStreamingFile } from 'openai';
import type { ProviderKind, ProviderSettings } from './config.ts';
import { ProviderError, toProviderError, WebhookVerificationError, withProviderErrors } from './errors.ts';
import { normalizeJob } from './job-statuses.ts';
import type {
  ChatCompletionBody,
  ChatCompletionChunk,
  ChatCompletionInput,
  ChatCompletionParams,
  ChatCompletionResult,
  ChatCompletionStreamParams,
  CreateJobInput,
  Page,
  ProviderCheckpoint,
  ProviderFile,
  ProviderJob,
  ProviderJobEvent,
  ProviderProfile,
  ProviderWebhookEvent,
  UploadFileInput,
} from './profile.ts';
import { mapStreamErrors, toChatCompletionResult, waitForProcessedFile } from './profile.ts';

/** How far findJobByMetadata and findFileByNameAndSize look (providers that ignore the filter get scanned). */
const MAX_SCAN = 2_000;

export class OpenAIProviderProfile implements ProviderProfile {
  constructor(
    readonly kind: ProviderKind,
    private readonly client: OpenAI,
    private readonly webhookSecret: string | undefined,
  ) {}

  uploadFile({ filename, content, signal }: UploadFileInput): Promise<ProviderFile> {
    return withProviderErrors(async () => {
      // A stream is sent as it is read and cannot be replayed, so no SDK retries for it.
      const file = Buffer.isBuffer(content)
        ? await toFile(content, filename, { type: 'application/jsonl' })
        : toStreamingFile(content instanceof Readable ? content : Readable.from(content), filename, {
            type: 'application/jsonl',
          });
      return this.client.files.create(
        { file, purpose: 'fine-tune' },
        { ...(Buffer.isBuffer(content) ? {} : { maxRetries: 0 }), ...(signal ? { signal } : {}) },
      );
    });
  }

  findFileByNameAndSize(filename: string, size: number): Promise<ProviderFile | null> {
    return withProviderErrors(async () => {
      let scanned = 0;
      for await (const file of this.client.files.list({ purpose: 'fine-tune', order: 'desc' })) {
        if (file.filename === filename && file.bytes === size && file.status !== 'error') return file;
        if (++scanned >= MAX_SCAN) break;
      }
      return null;
    });
  }

  waitUntilProcessed(fileId: string, opts: { timeoutMs?: number } = {}): Promise<ProviderFile> {
    return waitForProcessedFile(
      fileId,
      () => withProviderErrors(() => this.client.files.retrieve(fileId)),
      opts,
    );
  }

  createJob(input: CreateJobInput): Promise<ProviderJob> {
    return withProviderErrors(async () =>
      this.job(
        await this.client.fineTuning.jobs.create(
          {
            model: input.model,
            training_file: input.trainingFile,
            ...(input.validationFile ? { validation_file: input.validationFile } : {}),
            ...(input.suffix ? { suffix: input.suffix } : {}),
            ...(input.seed !== undefined ? { seed: input.seed } : {}),
            metadata: input.metadata,
            method: { type: 'supervised', supervised: { hyperparameters: input.hyperparameters ?? {} } },
          },
          // Creating a job is not idempotent at the provider: never let the SDK repeat it.
          { maxRetries: 0 },
        ),
      ),
    );
  }

  /** A job as the stages read it (Azure's extra statuses mapped). */
  private job(job: ProviderJob): ProviderJob {
    return normalizeJob(this.kind, job);
  }

  findJobByMetadata(key: string, value: string): Promise<ProviderJob | null> {
    return withProviderErrors(async () => {
      let scanned = 0;
      // The filter narrows the list where supported; the check below keeps it right where it isn't.
      for await (const job of this.client.fineTuning.jobs.list({ metadata: { [key]: value }, limit: 100 })) {
        if (job.metadata?.[key] === value) return this.job(job);
        if (++scanned >= MAX_SCAN) break;
      }
      return null;
    });
  }

  retrieveJob(jobId: string): Promise<ProviderJob> {
    return withProviderErrors(async () => this.job(await this.client.fineTuning.jobs.retrieve(jobId)));
  }

  listJobs(
    opts: { after?: string; limit?: number; metadata?: Record<string, string> } = {},
  ): Promise<Page<ProviderJob>> {
    return withProviderErrors(async () => {
      const page = await this.client.fineTuning.jobs.list({
        ...(opts.after ? { after: opts.after } : {}),
        ...(opts.limit ? { limit: opts.limit } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
      });
      return { data: page.data.map((j) => this.job(j)), hasMore: page.has_more };
    });
  }

  listEvents(jobId: string, opts: { after?: string; limit?: number } = {}): Promise<Page<ProviderJobEvent>> {
    return withProviderErrors(async () => {
      const page = await this.client.fineTuning.jobs.listEvents(jobId, opts);
      return { data: page.data, hasMore: page.has_more };
    });
  }

  listCheckpoints(
    jobId: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<Page<ProviderCheckpoint>> {
    return withProviderErrors(async () => {
      const page = await this.client.fineTuning.jobs.checkpoints.list(jobId, opts);
      return { data: page.data, hasMore: page.has_more };
    });
  }

  cancelJob(jobId: string): Promise<ProviderJob> {
    return withProviderErrors(async () => this.job(await this.client.fineTuning.jobs.cancel(jobId)));
  }

  async deleteFile(fileId: string): Promise<void> {
    try {
      await withProviderErrors(() => this.client.files.delete(fileId));
    } catch (err) {
      if (!(err instanceof ProviderError && err.kind === 'not_found')) throw err;
    }
  }

  async deleteModel(model: string): Promise<void> {
    try {
      await withProviderErrors(() => this.client.models.delete(model));
    } catch (err) {
      if (!(err instanceof ProviderError && err.kind === 'not_found')) throw err;
    }
  }

  chatCompletion(input: ChatCompletionInput): Promise<ChatCompletionResult> {
    return withProviderErrors(async () => {
      const res = await this.client.chat.completions.create({
        model: input.model,
        messages: input.messages,
        ...(input.maxTokens !== undefined ? { max_completion_tokens: input.maxTokens } : {}),
        ...(input.temperature !== undefined ? { temperature: input.temperature } : {}),
      });
      return toChatCompletionResult(res);
    });
  }

  createChatCompletion(
    params: ChatCompletionParams,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ChatCompletionBody> {
    return withProviderErrors(() => this.client.chat.completions.create(params, opts));
  }

  async streamChatCompletion(
    params: ChatCompletionStreamParams,
    opts: { signal?: AbortSignal } = {},
  ): Promise<AsyncIterable<ChatCompletionChunk>> {
    const stream = await withProviderErrors(() => this.client.chat.completions.create(params, opts));
    return mapStreamErrors(stream, toProviderError);
  }

  async unwrapWebhook(
    body: string,
    headers: Record<string, string | string[] | undefined> | Headers,
  ): Promise<ProviderWebhookEvent> {
    if (!this.webhookSecret) throw new WebhookVerificationError('PROVIDER_WEBHOOK_SECRET is not configured');
    const plain: Record<string, string> = {};
    if (headers instanceof Headers) {
      for (const [k, v] of headers.entries()) plain[k] = v;
    } else {
      for (const [k, v] of Object.entries(headers)) {
        if (v !== undefined) plain[k.toLowerCase()] = Array.isArray(v) ? v.join(' ') : v;
      }
    }
    try {
      return (await this.client.webhooks.unwrap(
        body,
        plain,
        this.webhookSecret,
      )) as unknown as ProviderWebhookEvent;
    } catch (err) {
      throw new WebhookVerificationError(err instanceof Error ? err.message : String(err));
    }
  }
}

/** Called once per HTTP request the SDK makes (retries included): what metrics count. */
export type ProviderRequestObserver = (operation: ProviderOperation, status: string) => void;

export type ProviderOperation =
  | 'files.create'
  | 'files.list'
  | 'files.retrieve'
  | 'files.content'
  | 'files.delete'
  | 'jobs.create'
  | 'jobs.list'
  | 'jobs.retrieve'
  | 'jobs.cancel'
  | 'jobs.events'
  | 'jobs.checkpoints'
  | 'chat.completions'
  | 'models'
  | 'other';

const OPERATIONS: [RegExp, string, ProviderOperation][] = [
  [/\/files$/, 'POST', 'files.create'],
  [/\/files$/, 'GET', 'files.list'],
  [/\/files\/[^/]+\/content$/, 'GET', 'files.content'],
  [/\/files\/[^/]+$/, 'GET', 'files.retrieve'],
  [/\/files\/[^/]+$/, 'DELETE', 'files.delete'],
  [/\/fine_tuning\/jobs$/, 'POST', 'jobs.create'],
  [/\/fine_tuning\/jobs$/, 'GET', 'jobs.list'],
  [/\/fine_tuning\/jobs\/[^/]+\/cancel$/, 'POST', 'jobs.cancel'],
  [/\/fine_tuning\/jobs\/[^/]+\/events$/, 'GET', 'jobs.events'],
  [/\/fine_tuning\/jobs\/[^/]+\/checkpoints$/, 'GET', 'jobs.checkpoints'],
  [/\/fine_tuning\/jobs\/[^/]+$/, 'GET', 'jobs.retrieve'],
  [/\/chat\/completions$/, 'POST', 'chat.completions'],
  // Together's dialect.
  [/\/files\/upload$/, 'POST', 'files.create'],
  [/\/fine-tunes$/, 'POST', 'jobs.create'],
  [/\/fine-tunes$/, 'GET', 'jobs.list'],
  [/\/fine-tunes\/[^/]+\/cancel$/, 'POST', 'jobs.cancel'],
  [/\/fine-tunes\/[^/]+\/events$/, 'GET', 'jobs.events'],
  [/\/fine-tunes\/[^/]+\/checkpoints$/, 'GET', 'jobs.checkpoints'],
  [/\/fine-tunes\/[^/]+$/, 'GET', 'jobs.retrieve'],
  [/\/models(\/[^/]+)?$/, 'GET', 'models'],
];

/** A bounded name for a provider request (ids never become label values). */
export function providerOperation(method: string, url: string): ProviderOperation {
  const path = new URL(url).pathname.replace(/\/+$/, '');
  const verb = method.toUpperCase();
  for (const [pattern, m, name] of OPERATIONS) if (m === verb && pattern.test(path)) return name;
  return 'other';
}

/** The SDK's fetch, reporting each request's operation and outcome to `observe`. */
export function observedFetch(observe: ProviderRequestObserver): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const operation = providerOperation(method, url);
    try {
      const res = await fetch(input, init);
      observe(operation, String(res.status));
      return res;
    } catch (err) {
      observe(operation, 'network');
      throw err;
    }
  };
}

export function createProviderProfile(
  settings: Exclude<ProviderSettings, { kind: 'together' }>,
  opts: { onRequest?: ProviderRequestObserver } = {},
): ProviderProfile {
  const { maxRetries, timeoutMs, webhookSecret } = settings.common;
  const fetchOption = opts.onRequest ? { fetch: observedFetch(opts.onRequest) } : {};
  const client =
    settings.kind === 'azure'
      ? new AzureOpenAI({
          baseURL: null,
          endpoint: settings.endpoint,
          apiKey: settings.apiKey,
          apiVersion: settings.apiVersion,
          maxRetries,
          timeout: timeoutMs,
          ...fetchOption,
        })
      : new OpenAI({
          apiKey: settings.apiKey,
          baseURL: settings.baseURL ?? null,
          maxRetries,
          timeout: timeoutMs,
          ...fetchOption,
        });
  return new OpenAIProviderProfile(settings.kind, client, webhookSecret);
}
