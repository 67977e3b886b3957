// In-memory fine-tuning state and the job lifecycle:
// validating_files → queued → running (one timer per epoch; pausable) → succeeded | failed | cancelled.
import { type Clock, type Scheduler, unixSeconds } from './clock.ts';
import { ApiError, badRequest, noSuchFile, notFound } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import {
  type RequestedHyperparameters,
  type ResolvedHyperparameters,
  resolveHyperparameters,
} from './hyperparameters.ts';
import { type BaseModel, findBaseModel } from './models.ts';
import { derivedFloat, derivedId, type SeededRandom } from './random.ts';
import { type TrainingExample, validateTrainingFile } from './validation.ts';
import type { WebhookSender } from './webhooks.ts';

export const ORGANIZATION = 'tuneline-sim';
export const ORGANIZATION_ID = 'org-tunelinesim';

/** Simulated durations of each phase (divided by `speed` before they become real timers). */
export const DURATIONS = {
  fileProcessingMs: 5_000,
  validatingMs: 30_000,
  queuedMs: 60_000,
  runningBaseMs: 60_000,
  /** Training throughput: trained tokens per simulated millisecond. */
  tokensPerMs: 5,
};

export type FileStatus = 'uploaded' | 'processed' | 'error';

export interface SimFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: FileStatus;
  status_details?: string;
  expires_at?: number;
  content: Buffer;
}

export type JobStatus =
  | 'validating_files'
  | 'queued'
  | 'running'
  | 'paused'
  | 'succeeded'
  | 'failed'
  | 'cancelled';
const TERMINAL: JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface JobEvent {
  object: 'fine_tuning.job.event';
  id: string;
  created_at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  type: 'message' | 'metrics';
  data: Record<string, unknown>;
}

export interface Checkpoint {
  object: 'fine_tuning.job.checkpoint';
  id: string;
  created_at: number;
  fine_tuned_model_checkpoint: string;
  fine_tuning_job_id: string;
  step_number: number;
  metrics: Record<string, number>;
}

type HyperparametersOut = {
  n_epochs: number | 'auto';
  batch_size: number | 'auto';
  learning_rate_multiplier: number | 'auto';
};

export interface SimJob {
  id: string;
  created_at: number;
  model: string;
  base: BaseModel;
  training_file: string;
  validation_file: string | null;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  requested: RequestedHyperparameters;
  hyperparameters: HyperparametersOut;
  status: JobStatus;
  error: { code: string; message: string; param: string | null } | null;
  fine_tuned_model: string | null;
  finished_at: number | null;
  trained_tokens: number | null;
  result_files: string[];
  estimated_finish: number | null;
  events: JobEvent[];
  checkpoints: Checkpoint[];
  // Private lifecycle state.
  examples: TrainingExample[];
  billableTokens: number;
  resolved: ResolvedHyperparameters | null;
  epochsDone: number;
  epochMs: number;
  epochStartedAt: number;
  remainingEpochMs: number | null;
  cancelTimer: (() => void) | null;
}

export interface FineTunedModel {
  id: string;
  created: number;
  jobId: string;
  examples: TrainingExample[];
  deleted: boolean;
}

export interface CreateJobBody {
  model?: unknown;
  training_file?: unknown;
  validation_file?: unknown;
  suffix?: unknown;
  seed?: unknown;
  metadata?: unknown;
  hyperparameters?: unknown;
  method?: unknown;
  integrations?: unknown;
}

export interface SimState {
  files: Map<string, SimFile>;
  jobs: Map<string, SimJob>;
  models: Map<string, FineTunedModel>;
}

export class FineTuningService {
  readonly state: SimState = { files: new Map(), jobs: new Map(), models: new Map() };

  constructor(
    private readonly random: SeededRandom,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
    private readonly faults: FaultInjector,
    private readonly webhooks: WebhookSender | null,
  ) {}

  // ---- files ----

  /** `id` is given for files made by timers (result files), so ids don't depend on timer order. */
  addFile(
    filename: string,
    purpose: string,
    content: Buffer,
    status: FileStatus = 'uploaded',
    id?: string,
  ): SimFile {
    const file: SimFile = {
      id: id ?? this.random.id('file-', 22),
      object: 'file',
      bytes: content.length,
      created_at: unixSeconds(this.clock),
      filename,
      purpose,
      status,
      content,
    };
    this.state.files.set(file.id, file);
    if (status === 'uploaded') {
      this.scheduler.after(DURATIONS.fileProcessingMs, () => {
        if (this.state.files.get(file.id) === file) file.status = 'processed';
      });
    }
    return file;
  }

  getFile(id: string): SimFile {
    const file = this.state.files.get(id);
    if (!file) throw noSuchFile(id);
    return file;
  }

  deleteFile(id: string): { id: string; object: 'file'; deleted: true } {
    this.getFile(id);
    this.state.files.delete(id);
    return { id, object: 'file', deleted: true };
  }

  // ---- jobs ----

  getJob(id: string): SimJob {
    const job = this.state.jobs.get(id);
    if (!job) throw notFound(`Could not find fine-tune job: ${id}`, 'fine_tuning_job_id');
    return job;
  }

  createJob(body: CreateJobBody): SimJob {
    if (typeof body.model !== 'string' || !body.model)
      throw badRequest("Missing required parameter: 'model'.", 'model');
    const base = this.resolveBaseModel(body.model);
    const training = this.usableFile(body.training_file, 'training_file');
    const validation =
      body.validation_file == null ? null : this.usableFile(body.validation_file, 'validation_file');
    const suffix = this.parseSuffix(body.suffix);
    const metadata = parseMetadata(body.metadata);
    const requested = parseHyperparameters(body);
    if (body.seed !== undefined && body.seed !== null && !Number.isInteger(body.seed)) {
      throw badRequest("Invalid type for 'seed': expected an integer.", 'seed', 'invalid_type');
    }
    const id = this.random.id('ftjob-', 24);
    const seed = typeof body.seed === 'number' ? body.seed : this.random.int(2 ** 31);
    const job: SimJob = {
      id,
      created_at: unixSeconds(this.clock),
      model: body.model,
      base,
      training_file: training.id,
      validation_file: validation?.id ?? null,
      suffix,
      seed,
      metadata,
      requested,
      hyperparameters: {
        n_epochs: requested.n_epochs ?? 'auto',
        batch_size: requested.batch_size ?? 'auto',
        learning_rate_multiplier: requested.learning_rate_multiplier ?? 'auto',
      },
      status: 'validating_files',
      error: null,
      fine_tuned_model: null,
      finished_at: null,
      trained_tokens: null,
      result_files: [],
      estimated_finish: null,
      events: [],
      checkpoints: [],
      examples: [],
      billableTokens: 0,
      resolved: null,
      epochsDone: 0,
      epochMs: 0,
      epochStartedAt: 0,
      remainingEpochMs: null,
      cancelTimer: null,
    };
    this.state.jobs.set(id, job);
    this.event(job, `Created fine-tuning job: ${id}`);
    this.event(
      job,
      validation
        ? `Validating training file: ${training.id} and validation file: ${validation.id}`
        : `Validating training file: ${training.id}`,
    );
    job.cancelTimer = this.scheduler.after(DURATIONS.validatingMs, () => this.finishValidation(job));
    return job;
  }

  /** Jobs newest first, optionally only those whose metadata holds every given pair. */
  listJobs(filter: Record<string, string>): SimJob[] {
    const jobs = [...this.state.jobs.values()].reverse();
    const pairs = Object.entries(filter);
    return pairs.length === 0 ? jobs : jobs.filter((j) => pairs.every(([k, v]) => j.metadata?.[k] === v));
  }

  cancelJob(id: string): SimJob {
    const job = this.getJob(id);
    if (TERMINAL.includes(job.status)) {
      throw badRequest(
        `Job ${id} has already ${job.status === 'cancelled' ? 'been cancelled' : 'completed'}.`,
        null,
        'invalid_job_state',
      );
    }
    this.endCancelled(job, 'Fine-tuning job cancelled');
    return job;
  }

  pauseJob(id: string): SimJob {
    const job = this.getJob(id);
    if (job.status !== 'running')
      throw badRequest(
        `Only running jobs can be paused; job ${id} is ${job.status}.`,
        null,
        'invalid_job_state',
      );
    job.cancelTimer?.();
    job.cancelTimer = null;
    const elapsed = (this.clock.now() - job.epochStartedAt) * this.scheduler.speed;
    job.remainingEpochMs = Math.max(0, job.epochMs - elapsed);
    job.status = 'paused';
    job.estimated_finish = null;
    this.event(job, 'Fine-tuning job paused');
    return job;
  }

  resumeJob(id: string): SimJob {
    const job = this.getJob(id);
    if (job.status !== 'paused')
      throw badRequest(
        `Only paused jobs can be resumed; job ${id} is ${job.status}.`,
        null,
        'invalid_job_state',
      );
    job.status = 'running';
    this.event(job, 'Fine-tuning job resumed');
    this.scheduleEpoch(job, job.remainingEpochMs ?? job.epochMs);
    job.remainingEpochMs = null;
    return job;
  }

  /** Admin: end a job now as failed or cancelled, or let it succeed from where it is. */
  forceOutcome(id: string, outcome: 'fail' | 'cancel'): SimJob {
    const job = this.getJob(id);
    if (TERMINAL.includes(job.status))
      throw badRequest(`Job ${id} is already ${job.status}.`, null, 'invalid_job_state');
    if (outcome === 'fail')
      this.endFailed(job, {
        code: 'simulated_failure',
        message: 'The job failed (forced by the simulator admin).',
        param: null,
      });
    else this.endCancelled(job, 'Fine-tuning job cancelled');
    return job;
  }

  // ---- models ----

  getFineTunedModel(id: string): FineTunedModel | undefined {
    const m = this.state.models.get(id);
    return m && !m.deleted ? m : undefined;
  }

  close(): void {
    for (const job of this.state.jobs.values()) job.cancelTimer?.();
  }

  // ---- lifecycle ----

  private finishValidation(job: SimJob): void {
    if (job.status !== 'validating_files') return;
    const training = this.state.files.get(job.training_file);
    if (!training) {
      this.endFailed(job, {
        code: 'invalid_training_file',
        message: `Training file ${job.training_file} was deleted.`,
        param: 'training_file',
      });
      return;
    }
    const result = validateTrainingFile(training.content.toString('utf8'), job.base);
    if (!result.ok) {
      this.endFailed(job, {
        code: result.code,
        message: `The job failed due to an invalid training file. ${result.message}`,
        param: 'training_file',
      });
      return;
    }
    if (job.validation_file) {
      const file = this.state.files.get(job.validation_file);
      const v = file
        ? validateTrainingFile(file.content.toString('utf8'), job.base, 1)
        : {
            ok: false as const,
            code: 'invalid_validation_file',
            message: `Validation file ${job.validation_file} was deleted.`,
          };
      if (!v.ok) {
        const message = v.message;
        this.endFailed(job, {
          code: 'invalid_validation_file',
          message: `The job failed due to an invalid validation file. ${message}`,
          param: 'validation_file',
        });
        return;
      }
    }
    job.examples = result.examples;
    job.billableTokens = result.tokens;
    job.resolved = resolveHyperparameters(job.requested, result.examples.length);
    job.hyperparameters = { ...job.resolved };
    job.status = 'queued';
    this.event(job, 'Files validated, moving job to queued state');
    job.cancelTimer = this.scheduler.after(DURATIONS.queuedMs, () => this.startRunning(job));
  }

  private startRunning(job: SimJob): void {
    if (job.status !== 'queued' || !job.resolved) return;
    job.status = 'running';
    const epochs = job.resolved.n_epochs;
    const runMs = DURATIONS.runningBaseMs + (job.billableTokens * epochs) / DURATIONS.tokensPerMs;
    job.epochMs = runMs / epochs;
    this.event(job, 'Fine-tuning job started');
    this.scheduleEpoch(job, job.epochMs);
  }

  private totalSteps(job: SimJob): number {
    const r = job.resolved;
    return r ? Math.ceil(job.examples.length / r.batch_size) * r.n_epochs : 0;
  }

  private scheduleEpoch(job: SimJob, simulatedMs: number): void {
    const r = job.resolved;
    if (!r) return;
    job.epochStartedAt = this.clock.now();
    const remainingEpochs = r.n_epochs - job.epochsDone - 1;
    const realRemaining = this.scheduler.realMs(simulatedMs + remainingEpochs * job.epochMs);
    job.estimated_finish = Math.ceil((this.clock.now() + realRemaining) / 1000);
    job.cancelTimer = this.scheduler.after(simulatedMs, () => this.finishEpoch(job));
  }

  private finishEpoch(job: SimJob): void {
    const r = job.resolved;
    if (job.status !== 'running' || !r) return;
    job.epochsDone++;
    const stepsPerEpoch = Math.ceil(job.examples.length / r.batch_size);
    const step = stepsPerEpoch * job.epochsDone;
    const metrics = this.metrics(job, step);
    this.event(
      job,
      `Step ${step}/${this.totalSteps(job)}: training loss=${metrics.train_loss.toFixed(4)}`,
      'metrics',
      {
        step,
        total_steps: this.totalSteps(job),
        train_loss: metrics.train_loss,
        train_mean_token_accuracy: metrics.train_mean_token_accuracy,
      },
    );
    // Like OpenAI: a checkpoint per epoch, the last three kept.
    const checkpoint: Checkpoint = {
      object: 'fine_tuning.job.checkpoint',
      id: derivedId('ftckpt_', [job.id, step], 24),
      created_at: unixSeconds(this.clock),
      fine_tuned_model_checkpoint: `${this.modelName(job)}:ckpt-step-${step}`,
      fine_tuning_job_id: job.id,
      step_number: step,
      metrics,
    };
    job.checkpoints.push(checkpoint);
    if (job.checkpoints.length > 3) job.checkpoints.shift();
    this.event(job, `Checkpoint created at step ${step}`);

    const outcome = job.metadata?.sim_outcome;
    if (outcome === 'fail' && job.epochsDone === 1) {
      this.endFailed(job, {
        code: 'simulated_failure',
        message: 'The job failed (requested by metadata.sim_outcome=fail).',
        param: null,
      });
      return;
    }
    if (outcome === 'cancel' && job.epochsDone === 1) {
      this.endCancelled(job, 'Fine-tuning job cancelled');
      return;
    }
    if (job.epochsDone < r.n_epochs) this.scheduleEpoch(job, job.epochMs);
    else this.succeed(job);
  }

  private metrics(
    job: SimJob,
    step: number,
  ): Record<string, number> & { train_loss: number; train_mean_token_accuracy: number } {
    const total = Math.max(1, this.totalSteps(job));
    const progress = step / total;
    const jitter = derivedFloat([job.id, step, job.seed]) * 0.05;
    const round = (x: number) => Math.round(x * 10_000) / 10_000;
    const m = {
      step,
      train_loss: round(1.6 * (1 - progress) + 0.05 + jitter),
      train_mean_token_accuracy: round(Math.min(1, 0.55 + 0.43 * progress - jitter / 2)),
    };
    return job.validation_file
      ? {
          ...m,
          valid_loss: round(m.train_loss * 1.1),
          valid_mean_token_accuracy: round(m.train_mean_token_accuracy * 0.97),
        }
      : m;
  }

  private modelName(job: SimJob): string {
    return `ft:${job.model}:${ORGANIZATION}:${job.suffix ?? ''}:${derivedId('', [job.id, 'model'], 8)}`;
  }

  private succeed(job: SimJob): void {
    const r = job.resolved;
    if (!r) return;
    const name = this.modelName(job);
    const rows = ['step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy'];
    for (const c of job.checkpoints) {
      rows.push(
        [
          c.step_number,
          c.metrics.train_loss,
          c.metrics.train_mean_token_accuracy,
          c.metrics.valid_loss ?? '',
          c.metrics.valid_mean_token_accuracy ?? '',
        ].join(','),
      );
    }
    const result = this.addFile(
      'step_metrics.csv',
      'fine-tune-results',
      Buffer.from(`${rows.join('\n')}\n`),
      'processed',
      derivedId('file-', [job.id, 'result'], 22),
    );
    job.result_files = [result.id];
    job.fine_tuned_model = name;
    job.trained_tokens = job.billableTokens * r.n_epochs;
    job.status = 'succeeded';
    job.finished_at = unixSeconds(this.clock);
    job.estimated_finish = null;
    job.cancelTimer = null;
    this.state.models.set(name, {
      id: name,
      created: job.finished_at,
      jobId: job.id,
      examples: job.examples,
      deleted: false,
    });
    this.event(job, `New fine-tuned model created: ${name}`);
    this.event(job, 'The job has successfully completed');
    this.notify(job, 'fine_tuning.job.succeeded');
  }

  private endFailed(job: SimJob, error: { code: string; message: string; param: string | null }): void {
    job.cancelTimer?.();
    job.cancelTimer = null;
    job.status = 'failed';
    job.error = error;
    job.finished_at = unixSeconds(this.clock);
    job.estimated_finish = null;
    this.event(job, error.message, 'message', {}, 'error');
    this.notify(job, 'fine_tuning.job.failed');
  }

  private endCancelled(job: SimJob, message: string): void {
    job.cancelTimer?.();
    job.cancelTimer = null;
    job.status = 'cancelled';
    job.finished_at = unixSeconds(this.clock);
    job.estimated_finish = null;
    this.event(job, message);
    this.notify(job, 'fine_tuning.job.cancelled');
  }

  private event(
    job: SimJob,
    message: string,
    type: JobEvent['type'] = 'message',
    data: Record<string, unknown> = {},
    level: JobEvent['level'] = 'info',
  ): void {
    job.events.push({
      object: 'fine_tuning.job.event',
      id: derivedId('ftevent-', [job.id, job.events.length], 24),
      created_at: unixSeconds(this.clock),
      level,
      message,
      type,
      data,
    });
  }

  private notify(job: SimJob, type: string): void {
    if (!this.webhooks) return;
    const webhookId = derivedId('wh_', [job.id, type], 32);
    const event = {
      id: derivedId('evt_', [job.id, type], 32),
      object: 'event',
      created_at: unixSeconds(this.clock),
      type,
      data: { id: job.id },
    };
    this.webhooks.send(webhookId, event);
    if (this.faults.duplicateWebhook(type)) this.webhooks.send(webhookId, event);
  }

  // ---- checks on create ----

  private resolveBaseModel(model: string): BaseModel {
    const base = findBaseModel(model);
    if (base) return base;
    const tuned = this.getFineTunedModel(model);
    if (tuned) {
      const parent = this.state.jobs.get(tuned.jobId);
      if (parent) return parent.base;
    }
    throw badRequest(
      `Model ${model} is not available for fine-tuning or does not exist.`,
      'model',
      'model_not_available',
    );
  }

  private usableFile(raw: unknown, param: 'training_file' | 'validation_file'): SimFile {
    if (typeof raw !== 'string' || !raw) throw badRequest(`Missing required parameter: '${param}'.`, param);
    const file = this.state.files.get(raw);
    if (!file) throw badRequest(`Invalid file '${raw}': file does not exist.`, param, 'invalid_file');
    if (file.purpose !== 'fine-tune') {
      throw badRequest(
        `Invalid file '${raw}': purpose must be 'fine-tune', got '${file.purpose}'.`,
        param,
        'invalid_file_purpose',
      );
    }
    if (file.status !== 'processed') {
      throw badRequest(
        `File ${raw} is still being processed and is not ready to be used for fine-tuning. Please try again later.`,
        param,
        'file_not_ready',
      );
    }
    return file;
  }

  private parseSuffix(raw: unknown): string | null {
    if (raw == null || raw === '') return null;
    if (typeof raw !== 'string')
      throw badRequest("Invalid type for 'suffix': expected a string.", 'suffix', 'invalid_type');
    if (raw.length > 64)
      throw badRequest(
        `Invalid 'suffix': string too long. Expected a maximum length of 64, but got ${raw.length}.`,
        'suffix',
        'string_above_max_length',
      );
    if (!/^[A-Za-z0-9_-]+$/.test(raw))
      throw badRequest(
        "Invalid 'suffix': only letters, digits, '-' and '_' are allowed.",
        'suffix',
        'invalid_value',
      );
    return raw;
  }
}

/** OpenAI's metadata limits: at most 16 pairs, keys ≤ 64 characters, string values ≤ 512 characters. */
export function parseMetadata(raw: unknown): Record<string, string> | null {
  if (raw == null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw badRequest("Invalid type for 'metadata': expected an object.", 'metadata', 'invalid_type');
  const entries = Object.entries(raw);
  if (entries.length > 16)
    throw badRequest(
      `Invalid 'metadata': too many properties. Expected at most 16, got ${entries.length}.`,
      'metadata',
      'object_above_max_properties',
    );
  for (const [k, v] of entries) {
    if (k.length > 64)
      throw badRequest(
        `Invalid 'metadata': key '${k.slice(0, 20)}…' is longer than 64 characters.`,
        'metadata',
        'invalid_value',
      );
    if (typeof v !== 'string')
      throw badRequest(
        `Invalid type for 'metadata.${k}': expected a string.`,
        `metadata.${k}`,
        'invalid_type',
      );
    if (v.length > 512)
      throw badRequest(
        `Invalid 'metadata.${k}': string too long. Expected a maximum length of 512, but got ${v.length}.`,
        `metadata.${k}`,
        'string_above_max_length',
      );
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

const HP_LIMITS = {
  n_epochs: { min: 1, max: 50, integer: true },
  batch_size: { min: 1, max: 256, integer: true },
  learning_rate_multiplier: { min: Number.MIN_VALUE, max: Number.POSITIVE_INFINITY, integer: false },
} as const;

/** `method.supervised.hyperparameters` wins over the legacy top-level `hyperparameters`. */
export function parseHyperparameters(body: CreateJobBody): RequestedHyperparameters {
  const method = body.method as { type?: unknown; supervised?: { hyperparameters?: unknown } } | undefined;
  let raw: unknown = body.hyperparameters;
  let prefix = 'hyperparameters';
  if (method != null) {
    if (typeof method !== 'object' || method.type !== 'supervised') {
      throw badRequest(
        "Invalid 'method.type': the simulator supports 'supervised' fine-tuning only.",
        'method.type',
        'invalid_value',
      );
    }
    if (method.supervised?.hyperparameters !== undefined) {
      raw = method.supervised.hyperparameters;
      prefix = 'method.supervised.hyperparameters';
    }
  }
  if (raw == null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw badRequest(`Invalid type for '${prefix}': expected an object.`, prefix, 'invalid_type');
  const out: RequestedHyperparameters = {};
  for (const [key, value] of Object.entries(raw)) {
    const limits = HP_LIMITS[key as keyof typeof HP_LIMITS];
    if (!limits)
      throw badRequest(
        `Unrecognized hyperparameter '${prefix}.${key}'.`,
        `${prefix}.${key}`,
        'unknown_parameter',
      );
    if (value === 'auto' || value == null) continue;
    const ok =
      typeof value === 'number' &&
      (!limits.integer || Number.isInteger(value)) &&
      value >= limits.min &&
      value <= limits.max;
    if (!ok) {
      throw badRequest(
        `Invalid '${prefix}.${key}': expected 'auto' or a number from ${limits.min === Number.MIN_VALUE ? '>0' : limits.min}${Number.isFinite(limits.max) ? ` to ${limits.max}` : ''}, got ${JSON.stringify(value)}.`,
        `${prefix}.${key}`,
        'invalid_value',
      );
    }
    out[key as keyof RequestedHyperparameters] = value as number;
  }
  return out;
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.includes(status);
}

export { ApiError };
