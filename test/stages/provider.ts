import { PermanentError, RateLimitedError } from '@tuneline/runtime';
import OpenAI, { APIError, toFile } from 'openai';
import type { PipelineProvider } from './harness.ts';

/**
 * Interim provider over the official SDK (retries off), used until @tuneline/provider lands:
 * 429 → RateLimitedError(Retry-After), other 4xx but 408/409 → PermanentError, the rest retries.
 */
export function makeProvider(opts: {
  baseURL: string;
  apiKey: string;
  webhookSecret?: string;
}): PipelineProvider & {
  unwrapWebhook(
    body: string,
    headers: Record<string, string>,
  ): Promise<{ type: string; data?: { id?: string } }>;
  client: OpenAI;
} {
  const client = new OpenAI({
    baseURL: opts.baseURL,
    apiKey: opts.apiKey,
    maxRetries: 0,
    webhookSecret: opts.webhookSecret ?? null,
  });
  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof APIError && err.status === 429) {
        const after = Number(err.headers?.get('retry-after') ?? 1);
        throw new RateLimitedError(Math.max(1, Math.round(after * 1000)));
      }
      if (
        err instanceof APIError &&
        err.status &&
        err.status >= 400 &&
        err.status < 500 &&
        ![408, 409].includes(err.status)
      ) {
        throw new PermanentError(err.message);
      }
      throw err;
    }
  };
  return {
    client,
    uploadFile: ({ filename, content }) =>
      wrap(async () => client.files.create({ file: await toFile(content, filename), purpose: 'fine-tune' })),
    findFileByNameAndSize: (filename, size) =>
      wrap(async () => {
        for await (const f of client.files.list({ purpose: 'fine-tune' })) {
          if (f.filename === filename && f.bytes === size) return f;
        }
        return null;
      }),
    waitUntilProcessed: (fileId, { timeoutMs }) =>
      wrap(async () => {
        const deadline = Date.now() + timeoutMs;
        let delay = 50;
        for (;;) {
          const f = await client.files.retrieve(fileId);
          if (f.status === 'processed') return f;
          if (f.status === 'error')
            throw new PermanentError(`file ${fileId}: ${f.status_details ?? 'error'}`);
          if (Date.now() > deadline) throw new Error(`file ${fileId} not processed after ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 2_000);
        }
      }),
    findJobByMetadata: (key, value) =>
      wrap(async () => {
        const page = await client.fineTuning.jobs.list({ metadata: { [key]: value }, limit: 10 });
        return page.data[0] ?? null;
      }),
    createJob: (input) =>
      wrap(() =>
        client.fineTuning.jobs.create(
          {
            model: input.model,
            training_file: input.trainingFile,
            ...(input.validationFile ? { validation_file: input.validationFile } : {}),
            ...(input.suffix ? { suffix: input.suffix } : {}),
            ...(input.hyperparameters && input.hyperparameters !== 'auto'
              ? { hyperparameters: input.hyperparameters as never }
              : {}),
            metadata: input.metadata,
          },
          { maxRetries: 0 },
        ),
      ),
    retrieveJob: (id) => wrap(() => client.fineTuning.jobs.retrieve(id)),
    listJobs: ({ after, limit }) =>
      wrap(async () => {
        const page = await client.fineTuning.jobs.list({ ...(after ? { after } : {}), limit: limit ?? 100 });
        return { data: page.data, hasMore: page.has_more };
      }),
    listEvents: (id) => wrap(async () => (await client.fineTuning.jobs.listEvents(id, { limit: 100 })).data),
    listCheckpoints: (id) =>
      wrap(async () => (await client.fineTuning.jobs.checkpoints.list(id, { limit: 100 })).data),
    cancelJob: (id) => wrap(() => client.fineTuning.jobs.cancel(id)),
    unwrapWebhook: (body, headers) => client.webhooks.unwrap(body, headers) as never,
  };
}
