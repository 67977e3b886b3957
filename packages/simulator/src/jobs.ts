// The fine-tuning state machine: files, and each job's lifecycle
// validating_files → queued → running (one timer per epoch; pausable) → succeeded | failed | cancelled.
// Requests are parsed in job-request.ts, the state's types are in state.ts.
import { type Clock, type Scheduler, unixSeconds } from './clock.ts';
import { badRequest, noSuchFile, notFound } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import { resolveHyperparameters } from './hyperparameters.ts';
import { type CreateJobBody, parseCreateJob } from './job-request.ts';
import { type BaseModel, findBaseModel } from './models.ts';
import { derivedFloat, derivedId, type SeededRandom } from './random.ts';
import {
  type Checkpoint,
  type FileStatus,
  type FineTunedModel,
  isTerminal,
  type JobEvent,
  ORGANIZATION,
  type SimFile,
  type SimJob,
  type SimState,
} from './state.ts';
import { validateTrainingFile } from './validation.ts';
import type { WebhookSender } from './webhooks.ts';

/** Simulated durations of each phase (divided by `speed` before they become real timers). */
export const DURATIONS = {
  fileProcessingMs: 5_000,
  validatingMs: 30_000,
  queuedMs: 60_000,
  runningBaseMs: 60_000,
  /** Training throughput: trained tokens per simulated millisecond. */
  tokensPerMs: 5,
};

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
    const request = parseCreateJob(body, {
      baseModel: (model) => this.resolveBaseModel(model),
      usableFile: (id, param) => this.usableFile(id, param),
    });
    const { base, training, validation, suffix, metadata, requested } = request;
    const id = this.random.id('ftjob-', 24);
    const seed = request.seed ?? this.random.int(2 ** 31);
    const job: SimJob = {
      id,
      created_at: unixSeconds(this.clock),
      model: request.model,
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
    if (isTerminal(job.status)) {
      throw badRequest(
        `Job ${id} has already ${job.status === 'cancelled' ? 'been cancelled' : 'completed'}.`,
        null,
        'invalid_job_state',
      );
    }
    this.endCancelled(job, 'Fine-tuning job cancelled');
    return job;
  }

  /** The job, which must be in `status` for what is asked (`done`: what would be done to it). */
  private jobIn(id: string, status: 'running' | 'paused', done: string): SimJob {
    const job = this.getJob(id);
    if (job.status !== status) {
      throw badRequest(
        `Only ${status} jobs can be ${done}; job ${id} is ${job.status}.`,
        null,
        'invalid_job_state',
      );
    }
    return job;
  }

  pauseJob(id: string): SimJob {
    const job = this.jobIn(id, 'running', 'paused');
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
    const job = this.jobIn(id, 'paused', 'resumed');
    job.status = 'running';
    this.event(job, 'Fine-tuning job resumed');
    this.scheduleEpoch(job, job.remainingEpochMs ?? job.epochMs);
    job.remainingEpochMs = null;
    return job;
  }

  /** Admin: end a job now as failed or cancelled, or let it succeed from where it is. */
  forceOutcome(id: string, outcome: 'fail' | 'cancel'): SimJob {
    const job = this.getJob(id);
    if (isTerminal(job.status))
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

  // ---- the checks of a create request that need the state (job-request.ts asks them) ----

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

  private usableFile(raw: string, param: 'training_file' | 'validation_file'): SimFile {
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
}
