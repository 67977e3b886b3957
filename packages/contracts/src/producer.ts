import { createHash, randomUUID } from 'node:crypto';
import { Queue, type QueueOptions } from 'bullmq';
import { type FieldError, fieldErrors, formatFieldErrors } from './errors.ts';
import {
  type FineTuneRequest,
  type FineTuneRequestInput,
  fineTuneRequestSchema,
} from './fine-tune-request.ts';
import { fineTuneRequestMessage } from './messages.ts';
import { type MessageOf, queues } from './queues.ts';

export type EnqueueResult =
  | { ok: true; jobId: string; correlationId: string; duplicate: boolean }
  | { ok: false; message: string; errors: FieldError[] };

/** Stable content hash of a request, used to tell a retry from a conflicting reuse of a requestId. */
export function requestContentHash(request: FineTuneRequest): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/** JSON with object keys sorted, so equal content gives equal text whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      // A null prototype keeps a "__proto__" key as an ordinary property instead of dropping it.
      const sorted: Record<string, unknown> = Object.create(null);
      for (const k of Object.keys(v as object).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

/**
 * The typed producer upstream apps import. It validates before enqueueing and answers with the
 * bad fields named; the job id is deterministic per (license, requestId), so retries collapse.
 */
export class FineTuneRequestProducer {
  private readonly queue: Queue;

  constructor(opts: Pick<QueueOptions, 'connection' | 'prefix'>) {
    const def = queues['fine-tune-requests'];
    this.queue = new Queue(def.name, { ...opts, defaultJobOptions: def.jobOptions });
  }

  static validate(
    input: unknown,
  ): { ok: true; request: FineTuneRequest } | { ok: false; errors: FieldError[] } {
    const parsed = fineTuneRequestSchema.safeParse(input);
    if (parsed.success) return { ok: true, request: parsed.data };
    return { ok: false, errors: fieldErrors(parsed.error) };
  }

  async enqueue(input: FineTuneRequestInput, opts: { correlationId?: string } = {}): Promise<EnqueueResult> {
    const checked = FineTuneRequestProducer.validate(input);
    if (!checked.ok) {
      return {
        ok: false,
        errors: checked.errors,
        message: `invalid fine-tune request: ${formatFieldErrors(checked.errors)}`,
      };
    }
    const request = checked.request;
    const { jobId: id, payload: message } = fineTuneRequestMessage({
      request,
      correlationId: opts.correlationId ?? randomUUID(),
    });
    await this.queue.add(queues['fine-tune-requests'].name, message, { jobId: id });
    // When the id is taken BullMQ keeps the existing job and ignores this add: read back what is stored
    // to tell a retry (same content) from a conflicting reuse of the requestId.
    const stored = ((await this.queue.getJob(id))?.data as MessageOf<'fine-tune-requests'> | undefined) ?? {
      correlationId: message.correlationId,
      request,
    };
    const duplicate = stored.correlationId !== message.correlationId;
    if (duplicate && requestContentHash(stored.request) !== requestContentHash(request)) {
      return {
        ok: false,
        errors: [{ field: 'requestId', message: 'already used for a request with different content' }],
        message: `requestId "${request.requestId}" was already used for a request with different content`,
      };
    }
    return { ok: true, jobId: id, correlationId: stored.correlationId, duplicate };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
