import type { Readable } from 'node:stream';
import type OpenAI from 'openai';
import type { ProviderKind } from './config.ts';
import { ProviderError } from './errors.ts';

export type ProviderFile = OpenAI.Files.FileObject;
export type ProviderJob = OpenAI.FineTuning.Jobs.FineTuningJob;
export type ProviderJobEvent = OpenAI.FineTuning.Jobs.FineTuningJobEvent;
export type ProviderCheckpoint = OpenAI.FineTuning.Jobs.Checkpoints.FineTuningJobCheckpoint;

export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

export interface UploadFileInput {
  filename: string;
  content: Buffer | Readable;
  /** Bytes of `content`: used to find an earlier upload of the same file. */
  size: number;
  /** Aborts the request (and closes its connection), e.g. when reading `content` failed midway. */
  signal?: AbortSignal;
}

export interface CreateJobInput {
  model: string;
  trainingFile: string;
  validationFile?: string | null;
  suffix?: string | null;
  seed?: number;
  hyperparameters?: {
    n_epochs?: number | 'auto';
    batch_size?: number | 'auto';
    learning_rate_multiplier?: number | 'auto';
  };
  /** Tag the job (e.g. `{fine_tune_id}`) so it can be found again after a lost answer. */
  metadata: Record<string, string>;
}

export interface ChatCompletionInput {
  model: string;
  messages: Array<{ role: 'system' | 'developer' | 'user' | 'assistant'; content: string }>;
  maxTokens?: number;
  temperature?: number;
}

export interface ChatCompletionResult {
  id: string;
  model: string;
  content: string;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}

/** An answer in OpenAI's chat-completion shape (OpenAI, Azure and Together all answer so). */
interface OpenAIShapedCompletion {
  id: string;
  model: string;
  choices: ReadonlyArray<{ message?: { content?: unknown } | null; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
}

/** The narrow result of `chatCompletion` from a provider's answer: the first choice and the usage. */
export function toChatCompletionResult(res: OpenAIShapedCompletion): ChatCompletionResult {
  const choice = res.choices[0];
  const content = choice?.message?.content;
  return {
    id: res.id,
    model: res.model,
    content: typeof content === 'string' ? content : '',
    finishReason: choice?.finish_reason ?? 'stop',
    usage: {
      promptTokens: res.usage?.prompt_tokens ?? 0,
      completionTokens: res.usage?.completion_tokens ?? 0,
      totalTokens: res.usage?.total_tokens ?? 0,
    },
  };
}

/** An OpenAI chat-completions request body, sent as it is (the gateway validated it). */
/**
 * `waitUntilProcessed` as every profile does it: `retrieve` the file (in the profile's error wrapper)
 * with a growing pause (50 ms doubling to 5 s) until it is processed; `rejected` when the provider could
 * not process it; a retryable error past `timeoutMs` (the file may still finish: the stage looks again).
 */
export async function waitForProcessedFile(
  fileId: string,
  retrieve: () => Promise<ProviderFile>,
  opts: { timeoutMs?: number } = {},
): Promise<ProviderFile> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const file = await retrieve();
    if (file.status === 'processed') return file;
    if (file.status === 'error') {
      throw new ProviderError(
        'rejected',
        `provider could not process file ${fileId}: ${file.status_details ?? 'no details'}`,
      );
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`file ${fileId} still ${file.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    delay = Math.min(delay * 2, 5_000);
  }
}

/**
 * `stream`, with an error that surfaces mid-iteration mapped by `toError` (the profile's own errors).
 * What that leaves unmapped is the connection itself failing while the body streams (fetch's
 * `TypeError: terminated` when the provider closes the socket): a transient `ProviderError`, like a
 * provider that cannot be reached, with the socket's error as its cause.
 */
export function mapStreamErrors<T>(
  stream: AsyncIterable<T>,
  toError: (err: unknown) => unknown,
): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of stream) yield chunk;
      } catch (err) {
        const mapped = toError(err);
        if (mapped instanceof ProviderError) throw mapped;
        throw new ProviderError(
          'transient',
          `provider stream broke: ${(err as Error)?.message ?? String(err)}`,
          {
            cause: err,
          },
        );
      }
    },
  };
}

export type ChatCompletionParams = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
export type ChatCompletionStreamParams = OpenAI.Chat.ChatCompletionCreateParamsStreaming;
export type ChatCompletionBody = OpenAI.Chat.ChatCompletion;
export type ChatCompletionChunk = OpenAI.Chat.ChatCompletionChunk;

export interface ProviderWebhookEvent {
  id: string;
  type: string;
  created_at: number;
  data: { id: string };
}

/**
 * What every stage needs from a fine-tuning provider. Every failure the provider reports comes out
 * as a `ProviderError` whose `kind` says what went wrong (see errors.ts); each caller decides what
 * that means for its job.
 */
export interface ProviderProfile {
  readonly kind: ProviderKind;
  uploadFile(input: UploadFileInput): Promise<ProviderFile>;
  /** The newest fine-tune file with this name and size that did not fail processing, if any. */
  findFileByNameAndSize(filename: string, size: number): Promise<ProviderFile | null>;
  /** Polls with backoff until the file is processed; a `rejected` ProviderError if processing failed. */
  waitUntilProcessed(fileId: string, opts?: { timeoutMs?: number }): Promise<ProviderFile>;
  /** Creates a job with SDK retries off: after any doubt, use findJobByMetadata before creating again. */
  createJob(input: CreateJobInput): Promise<ProviderJob>;
  findJobByMetadata(key: string, value: string): Promise<ProviderJob | null>;
  retrieveJob(jobId: string): Promise<ProviderJob>;
  listJobs(opts?: {
    after?: string;
    limit?: number;
    metadata?: Record<string, string>;
  }): Promise<Page<ProviderJob>>;
  /** Newest first. */
  listEvents(jobId: string, opts?: { after?: string; limit?: number }): Promise<Page<ProviderJobEvent>>;
  listCheckpoints(
    jobId: string,
    opts?: { after?: string; limit?: number },
  ): Promise<Page<ProviderCheckpoint>>;
  cancelJob(jobId: string): Promise<ProviderJob>;
  /** Deletes an uploaded file; one already gone is fine. */
  deleteFile(fileId: string): Promise<void>;
  /** Deletes a fine-tuned model (by its name, or its job where the provider deletes by job); gone is fine. */
  deleteModel(model: string, jobId: string | null): Promise<void>;
  chatCompletion(input: ChatCompletionInput): Promise<ChatCompletionResult>;
  /** The whole chat-completions protocol: the body goes out unchanged, the provider's answer comes back unchanged. */
  createChatCompletion(
    params: ChatCompletionParams,
    opts?: { signal?: AbortSignal },
  ): Promise<ChatCompletionBody>;
  /**
   * A streamed chat completion: resolves once the provider accepted the request (its errors reject
   * here as ProviderErrors), then yields the provider's chunks as they arrive. No SDK retries once
   * a stream started; `signal` aborts it.
   */
  streamChatCompletion(
    params: ChatCompletionStreamParams,
    opts?: { signal?: AbortSignal },
  ): Promise<AsyncIterable<ChatCompletionChunk>>;
  /** Verifies a Standard Webhooks signature (WebhookVerificationError if it fails) and parses the event. */
  unwrapWebhook(
    body: string,
    headers: Record<string, string | string[] | undefined> | Headers,
  ): Promise<ProviderWebhookEvent>;
}
