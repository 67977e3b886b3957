// The simulator's in-memory state: files, fine-tuning jobs and the models they made, as the API shows
// them plus each job's private lifecycle fields.
import type { RequestedHyperparameters, ResolvedHyperparameters } from './hyperparameters.ts';
import type { BaseModel } from './models.ts';
import type { TrainingExample } from './validation.ts';

export const ORGANIZATION = 'tuneline-sim';
export const ORGANIZATION_ID = 'org-tunelinesim';

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

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.includes(status);
}

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

export interface SimState {
  files: Map<string, SimFile>;
  jobs: Map<string, SimJob>;
  models: Map<string, FineTunedModel>;
}
