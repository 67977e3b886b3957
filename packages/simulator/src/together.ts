// The Together AI dialect, written from Together's published API reference (docs.together.ai/reference):
// files (`POST /files/upload` multipart with purpose, file_name, file_type, file; list, retrieve, delete,
// content), fine-tunes (`/fine-tunes`: create, list, retrieve, cancel, delete, events, checkpoints) with
// Together's statuses pending → queued → running → compressing → uploading → completed (or
// cancel_requested → cancelled, or error), `token_count` and `total_price` on the job, and
// OpenAI-compatible chat completions (streamed in Together's chunk shape). Served under `/together/v1` by the same simulator process.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { chatCompletion } from './chat.ts';
import type { ChatRequestLog } from './chat-routes.ts';
import { streamCompletion } from './chat-stream.ts';
import { type Clock, type Scheduler, unixSeconds } from './clock.ts';
import { ApiError, badRequest, notFound } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import type { FineTuningService } from './jobs.ts';
import type { BaseModel } from './models.ts';
import type { SeededRandom } from './random.ts';
import type { ToyModels } from './toy-model.ts';
import { type TrainingExample, validateTrainingFile } from './validation.ts';

export const TOGETHER_PREFIX = '/together/v1';

/**
 * Together base models the simulator trains. Open models have their own tokenizers; the simulator
 * counts with a tiktoken encoding as its stand-in (Llama 3's vocabulary extends cl100k's). Prices are
 * USD per million processed tokens (LoRA SFT, by size bracket).
 */
export interface TogetherBaseModel extends BaseModel {
  usdPerMillionTokens: number;
  /** Together's default `n_epochs`. */
  defaultEpochs: number;
}

export const TOGETHER_MODELS: TogetherBaseModel[] = [
  {
    id: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference',
    created: 1721692800,
    encoding: 'cl100k_base',
    exampleTokenLimit: 131072,
    usdPerMillionTokens: 0.48,
    defaultEpochs: 1,
  },
  {
    id: 'meta-llama/Meta-Llama-3.1-70B-Instruct-Reference',
    created: 1721692800,
    encoding: 'cl100k_base',
    exampleTokenLimit: 131072,
    usdPerMillionTokens: 2.9,
    defaultEpochs: 1,
  },
  {
    id: 'Qwen/Qwen2.5-7B-Instruct',
    created: 1726617600,
    encoding: 'cl100k_base',
    exampleTokenLimit: 32768,
    usdPerMillionTokens: 0.48,
    defaultEpochs: 1,
  },
];

export const TOGETHER_STATUSES = [
  'pending',
  'queued',
  'running',
  'compressing',
  'uploading',
  'cancel_requested',
  'cancelled',
  'error',
  'completed',
] as const;
export type TogetherStatus = (typeof TOGETHER_STATUSES)[number];

const DURATIONS = {
  fileProcessingMs: 3_000,
  pendingMs: 10_000,
  queuedMs: 30_000,
  epochMs: 60_000,
  compressingMs: 10_000,
  uploadingMs: 10_000,
  cancelMs: 5_000,
};

interface TogetherFile {
  id: string;
  object: 'file';
  created_at: number;
  filename: string;
  bytes: number;
  purpose: string;
  FileType: 'jsonl';
  Processed: boolean;
  processing_status: 'PENDING' | 'COMPLETED' | 'INVALID_FORMAT';
  validation_report?: { valid: boolean; error?: string; error_type?: 'INVALID_FORMAT'; nlines?: number };
  content: Buffer;
  examples: TrainingExample[];
  tokens: number;
}

interface TogetherEvent {
  object: 'fine-tune-event';
  created_at: string;
  message: string;
  type: string;
  level: 'info' | 'warning' | 'error' | null;
  step?: number;
  token_count?: number;
  checkpoint_path?: string;
}

interface TogetherJob {
  id: string;
  status: TogetherStatus;
  user_id: string;
  created_at: string;
  updated_at: string;
  started_at?: string;
  model: string;
  base: TogetherBaseModel;
  model_output_name: string;
  suffix?: string;
  training_file: string;
  validation_file?: string;
  n_epochs: number;
  n_evals: number;
  n_checkpoints: number;
  batch_size: number | 'max';
  learning_rate: number;
  random_seed: number | null;
  epochs_completed: number;
  token_count?: number;
  total_price?: number;
  events: TogetherEvent[];
  checkpoints: Array<{ checkpoint_type: string; created_at: string; path: string; step: number }>;
  examples: TrainingExample[];
  cancelTimer: (() => void) | null;
  deleted: boolean;
}

const USER_ID = 'user_tunelinesim';
const NAMESPACE = 'tuneline-sim';

function findModel(id: string): TogetherBaseModel | undefined {
  return TOGETHER_MODELS.find((m) => m.id === id);
}

export class TogetherService {
  readonly files = new Map<string, TogetherFile>();
  readonly jobs = new Map<string, TogetherJob>();

  constructor(
    private readonly random: SeededRandom,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
  ) {}

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private uuid(prefix: string): string {
    // Seeded, in UUID shape (Together's ids are `file-<uuid>` and `ft-<uuid>`).
    const hex = Array.from({ length: 32 }, () => this.random.int(16).toString(16)).join('');
    return `${prefix}${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  addFile(filename: string, purpose: string, content: Buffer): TogetherFile {
    const file: TogetherFile = {
      id: this.uuid('file-'),
      object: 'file',
      created_at: unixSeconds(this.clock),
      filename,
      bytes: content.length,
      purpose,
      FileType: 'jsonl',
      Processed: false,
      processing_status: 'PENDING',
      content,
      examples: [],
      tokens: 0,
    };
    this.files.set(file.id, file);
    this.scheduler.after(DURATIONS.fileProcessingMs, () => {
      // Checked as a conversation file for the smallest-context model: format, roles, at least one example.
      const checked = validateTrainingFile(content.toString('utf8'), TOGETHER_MODELS[2] as BaseModel, 1);
      file.Processed = true;
      if (checked.ok) {
        file.processing_status = 'COMPLETED';
        file.validation_report = { valid: true, nlines: checked.examples.length };
        file.examples = checked.examples;
        file.tokens = checked.tokens;
      } else {
        file.processing_status = 'INVALID_FORMAT';
        file.validation_report = { valid: false, error: checked.message, error_type: 'INVALID_FORMAT' };
      }
    });
    return file;
  }

  getFile(id: string): TogetherFile {
    const file = this.files.get(id);
    if (!file) throw notFound(`File ${id} not found`, 'id');
    return file;
  }

  getJob(id: string): TogetherJob {
    const job = this.jobs.get(id);
    if (!job || job.deleted) throw notFound(`Fine-tune job ${id} not found`, 'id');
    return job;
  }

  createJob(body: Record<string, unknown>): TogetherJob {
    const model = typeof body.model === 'string' ? findModel(body.model) : undefined;
    if (!model)
      throw badRequest(
        `Model ${String(body.model)} is not supported for fine-tuning.`,
        'model',
        'invalid_model',
      );
    const training = this.usableFile(body.training_file, 'training_file');
    const validation =
      body.validation_file === undefined || body.validation_file === null || body.validation_file === ''
        ? undefined
        : this.usableFile(body.validation_file, 'validation_file');
    const suffix = body.suffix;
    if (suffix !== undefined && (typeof suffix !== 'string' || suffix.length > 64))
      throw badRequest('suffix must be a string of at most 64 characters.', 'suffix');
    const nEpochs = body.n_epochs ?? model.defaultEpochs;
    if (typeof nEpochs !== 'number' || !Number.isInteger(nEpochs) || nEpochs < 1 || nEpochs > 20)
      throw badRequest('n_epochs must be an integer between 1 and 20.', 'n_epochs');
    const nEvals = body.n_evals ?? 0;
    if (typeof nEvals !== 'number' || !Number.isInteger(nEvals) || nEvals < 0)
      throw badRequest('n_evals must be a non-negative integer.', 'n_evals');
    if (nEvals > 0 && !validation) throw badRequest('n_evals > 0 requires a validation_file.', 'n_evals');
    const lr = body.learning_rate ?? 0.00001;
    if (typeof lr !== 'number' || !(lr > 0)) throw badRequest('learning_rate must be > 0.', 'learning_rate');
    const now = this.iso();
    const id = this.uuid('ft-');
    const short = id.slice(3, 11);
    const baseName = model.id.split('/').at(-1) ?? model.id;
    const job: TogetherJob = {
      id,
      status: 'pending',
      user_id: USER_ID,
      created_at: now,
      updated_at: now,
      model: model.id,
      base: model,
      model_output_name: `${NAMESPACE}/${baseName}${suffix ? `-${suffix}` : ''}-${short}`,
      ...(typeof suffix === 'string' ? { suffix } : {}),
      training_file: training.id,
      ...(validation ? { validation_file: validation.id } : {}),
      n_epochs: nEpochs,
      n_evals: nEvals,
      n_checkpoints: 1,
      batch_size: typeof body.batch_size === 'number' ? body.batch_size : 'max',
      learning_rate: lr,
      random_seed: typeof body.random_seed === 'number' ? body.random_seed : null,
      epochs_completed: 0,
      events: [],
      checkpoints: [],
      examples: training.examples,
      cancelTimer: null,
      deleted: false,
    };
    this.jobs.set(id, job);
    this.event(job, 'job_pending', 'Fine tune request created');
    const tokens = nEpochs * training.tokens + nEvals * (validation?.tokens ?? 0);
    job.cancelTimer = this.scheduler.after(DURATIONS.pendingMs, () => {
      this.setStatus(job, 'queued');
      job.cancelTimer = this.scheduler.after(DURATIONS.queuedMs, () => this.start(job, tokens));
    });
    return job;
  }

  private usableFile(raw: unknown, param: string): TogetherFile {
    if (typeof raw !== 'string' || !raw) throw badRequest(`${param} is required.`, param);
    const file = this.files.get(raw);
    if (!file) throw badRequest(`${param} ${raw} does not exist.`, param, 'file_not_found');
    if (file.processing_status !== 'COMPLETED')
      throw badRequest(
        `${param} ${raw} is not ready for fine-tuning (${file.processing_status}): ${file.validation_report?.error ?? 'still processing'}`,
        param,
        'invalid_file',
      );
    return file;
  }

  private start(job: TogetherJob, tokens: number): void {
    job.started_at = this.iso();
    this.setStatus(job, 'running');
    // Tokenization finishes as the job starts: the final token count and price appear now.
    job.token_count = tokens;
    job.total_price = Math.round(tokens * job.base.usdPerMillionTokens) / 1_000_000;
    this.event(job, 'job_start', 'Job started', { token_count: tokens });
    this.event(job, 'training_start', 'Training started');
    this.epoch(job);
  }

  private epoch(job: TogetherJob): void {
    job.cancelTimer = this.scheduler.after(DURATIONS.epochMs, () => {
      job.epochs_completed++;
      const step = job.epochs_completed * Math.max(1, Math.ceil(job.examples.length / 8));
      this.event(job, 'epoch_complete', `Epoch completed, at step ${step}`, { step });
      if (job.epochs_completed < job.n_epochs) return this.epoch(job);
      const path = `s3://together-sim/${job.id}/checkpoint-${step}`;
      job.checkpoints.push({ checkpoint_type: `Final, step ${step}`, created_at: this.iso(), path, step });
      this.event(job, 'checkpoint_save', `New checkpoint saved at step ${step}`, {
        step,
        checkpoint_path: path,
      });
      this.event(job, 'training_complete', 'Training completed');
      this.setStatus(job, 'compressing');
      this.event(job, 'model_compressing', 'Compressing output model');
      job.cancelTimer = this.scheduler.after(DURATIONS.compressingMs, () => {
        this.event(job, 'model_compression_complete', 'Model compression complete');
        this.setStatus(job, 'uploading');
        this.event(job, 'model_uploading', 'Uploading output model');
        job.cancelTimer = this.scheduler.after(DURATIONS.uploadingMs, () => {
          this.event(job, 'model_upload_complete', 'Model upload complete');
          this.setStatus(job, 'completed');
          job.cancelTimer = null;
          this.event(job, 'job_complete', `Job finished at ${this.iso()}`);
        });
      });
    });
  }

  cancel(id: string): TogetherJob {
    const job = this.getJob(id);
    if (job.status === 'completed' || job.status === 'error' || job.status === 'cancelled')
      throw badRequest(`Job ${id} is already ${job.status} and cannot be cancelled.`, 'id');
    if (job.status === 'cancel_requested') return job;
    job.cancelTimer?.();
    this.setStatus(job, 'cancel_requested');
    this.event(job, 'cancel_requested', 'Cancel requested');
    job.cancelTimer = this.scheduler.after(DURATIONS.cancelMs, () => {
      this.setStatus(job, 'cancelled');
      job.cancelTimer = null;
      this.event(job, 'job_stopped', 'Job stopped');
    });
    return job;
  }

  /** Test hook: the job errors at once (as a hardware or data failure would). */
  fail(id: string, message = 'Job failed: the training process exited with an error'): TogetherJob {
    const job = this.getJob(id);
    job.cancelTimer?.();
    job.cancelTimer = null;
    this.setStatus(job, 'error');
    this.event(job, 'job_error', message, {}, 'error');
    return job;
  }

  /** A job's outputs are removed; a running job is refused (cancel it first). */
  delete(id: string): { message: string } {
    const job = this.getJob(id);
    if (!['completed', 'error', 'cancelled'].includes(job.status))
      throw badRequest(`Job ${id} is ${job.status}: cancel it before deleting.`, 'id');
    job.deleted = true;
    return { message: `Fine-tune job ${id} deleted` };
  }

  /** A completed job's output model (by `model_output_name`), for chat completions. */
  modelByName(name: string): TogetherJob | undefined {
    for (const job of this.jobs.values())
      if (job.model_output_name === name && job.status === 'completed' && !job.deleted) return job;
    return undefined;
  }

  close(): void {
    for (const job of this.jobs.values()) job.cancelTimer?.();
  }

  private setStatus(job: TogetherJob, status: TogetherStatus): void {
    job.status = status;
    job.updated_at = this.iso();
  }

  private event(
    job: TogetherJob,
    type: string,
    message: string,
    extra: Partial<TogetherEvent> = {},
    level: TogetherEvent['level'] = 'info',
  ): void {
    job.events.push({ object: 'fine-tune-event', created_at: this.iso(), message, type, level, ...extra });
  }
}

function fileJson(file: TogetherFile) {
  const { content: _c, examples: _e, tokens: _t, ...rest } = file;
  return rest;
}

/** The truncated job (POST /fine-tunes, GET /fine-tunes, cancel), as the reference shows it. */
function jobTruncated(job: TogetherJob) {
  return {
    id: job.id,
    status: job.status,
    created_at: job.created_at,
    updated_at: job.updated_at,
    ...(job.started_at ? { started_at: job.started_at } : {}),
    user_id: job.user_id,
    owner_address: `${NAMESPACE}@example.com`,
    model: job.model,
    model_output_name: job.model_output_name,
    ...(job.suffix !== undefined ? { suffix: job.suffix } : {}),
    training_file: job.training_file,
    ...(job.validation_file ? { validation_file: job.validation_file } : {}),
    n_epochs: job.n_epochs,
    n_evals: job.n_evals,
    n_checkpoints: job.n_checkpoints,
    batch_size: job.batch_size,
    learning_rate: job.learning_rate,
    random_seed: job.random_seed,
    training_method: { method: 'sft', train_on_inputs: 'auto' },
    training_type: { type: 'Lora', lora_r: 8, lora_alpha: 8 },
    ...(job.token_count !== undefined ? { token_count: job.token_count } : {}),
    ...(job.total_price !== undefined ? { total_price: job.total_price } : {}),
  };
}

function jobFull(job: TogetherJob) {
  return {
    ...jobTruncated(job),
    epochs_completed: job.epochs_completed,
    events: job.events,
    trainingfile_numlines: job.examples.length,
  };
}

type Req = FastifyRequest<{ Params: { id?: string }; Body: unknown }>;

export function registerTogether(
  app: FastifyInstance,
  service: TogetherService,
  openai: FineTuningService,
  faults: FaultInjector,
  completionIds: SeededRandom,
  clock: Clock,
  toyModels: ToyModels,
  /** Every chat request is recorded here too (dialect `together`). */
  chatLog?: ChatRequestLog,
): void {
  const p = TOGETHER_PREFIX;
  app.post(`${p}/files/upload`, async (request: Req) => {
    if (!request.isMultipart())
      throw badRequest('Expected multipart/form-data with purpose, file_name and file.', 'file');
    const fields: Record<string, string> = {};
    let content: Buffer | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file') content = await part.toBuffer();
      else fields[part.fieldname] = String(part.value);
    }
    if (!fields.purpose) throw badRequest('purpose is required.', 'purpose');
    if (!['fine-tune', 'eval', 'batch-api'].includes(fields.purpose))
      throw badRequest(`Invalid purpose '${fields.purpose}'.`, 'purpose');
    if (!fields.file_name) throw badRequest('file_name is required.', 'file_name');
    if (!content) throw badRequest('file is required.', 'file');
    const type = fields.file_type ?? 'jsonl';
    if (type !== 'jsonl' || !fields.file_name.endsWith('.jsonl'))
      throw badRequest('The simulator accepts jsonl files only.', 'file_type');
    return fileJson(service.addFile(fields.file_name, fields.purpose, content));
  });
  app.get(`${p}/files`, async () => ({ data: [...service.files.values()].reverse().map(fileJson) }));
  app.get(`${p}/files/:id`, async (request: Req) => fileJson(service.getFile(request.params.id ?? '')));
  app.delete(`${p}/files/:id`, async (request: Req) => {
    const id = request.params.id ?? '';
    service.getFile(id);
    service.files.delete(id);
    return { id, deleted: true };
  });
  app.get(`${p}/files/:id/content`, async (request: Req, reply) => {
    reply.type('application/octet-stream');
    return service.getFile(request.params.id ?? '').content;
  });

  app.post(`${p}/fine-tunes`, async (request: Req, reply) => {
    const job = service.createJob((request.body ?? {}) as Record<string, unknown>);
    const lost = faults.loseCreate(request.method, request.url.split('?')[0] ?? '');
    if (lost === '500') throw new ApiError(500, 'Internal server error', 'server_error');
    if (lost === 'drop') {
      request.raw.socket.destroy();
      return reply.hijack();
    }
    return jobTruncated(job);
  });
  app.get(`${p}/fine-tunes`, async () => ({
    data: [...service.jobs.values()]
      .filter((j) => !j.deleted)
      .reverse()
      .map(jobTruncated),
  }));
  app.get(`${p}/fine-tunes/:id`, async (request: Req) => jobFull(service.getJob(request.params.id ?? '')));
  app.post(`${p}/fine-tunes/:id/cancel`, async (request: Req) =>
    jobTruncated(service.cancel(request.params.id ?? '')),
  );
  app.delete(`${p}/fine-tunes/:id`, async (request: Req) => service.delete(request.params.id ?? ''));
  app.get(`${p}/fine-tunes/:id/events`, async (request: Req) => ({
    data: service.getJob(request.params.id ?? '').events,
  }));
  app.get(`${p}/fine-tunes/:id/checkpoints`, async (request: Req) => ({
    data: [...service.getJob(request.params.id ?? '').checkpoints].reverse(),
  }));

  app.post(`${p}/chat/completions`, async (request: Req, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const name = typeof body.model === 'string' ? body.model : '';
    chatLog?.record({ dialect: 'together', model: name, url: request.url, body, at: clock.now() });
    const tuned = service.modelByName(name);
    if (!tuned && !findModel(name))
      throw new ApiError(
        404,
        `Unable to access model ${name}.`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    // Answered like the OpenAI dialect's chat (OpenAI-compatible), from the job's own examples.
    const encoding = tuned?.base.encoding ?? findModel(name)?.encoding ?? 'cl100k_base';
    const { completion, params } = chatCompletion(openai, name, body, completionIds, clock, toyModels, {
      encoding,
      ...(tuned
        ? {
            tuned: {
              record: tuned,
              source: { examples: tuned.examples, seed: tuned.random_seed ?? 42, epochs: tuned.n_epochs },
            },
          }
        : {}),
    });
    if (!params.stream) return completion;
    await streamCompletion(reply, completion, params, 'together', faults, encoding);
    return reply;
  });
}

export interface TogetherSnapshot {
  files: Array<{ id: string; filename: string; bytes: number; processing_status: string }>;
  jobs: Array<{
    id: string;
    status: string;
    model: string;
    suffix: string | undefined;
    model_output_name: string;
    token_count: number | undefined;
    deleted: boolean;
  }>;
}

export function togetherSnapshot(service: TogetherService): TogetherSnapshot {
  return {
    files: [...service.files.values()].map(({ id, filename, bytes, processing_status }) => ({
      id,
      filename,
      bytes,
      processing_status,
    })),
    jobs: [...service.jobs.values()].map((j) => ({
      id: j.id,
      status: j.status,
      model: j.model,
      suffix: j.suffix,
      model_output_name: j.model_output_name,
      token_count: j.token_count,
      deleted: j.deleted,
    })),
  };
}
