/** The provider's fine-tuning job, as the poller reads it (OpenAI's wire shape). */
export interface ProviderJob {
  id: string;
  status: string;
  fine_tuned_model?: string | null;
  trained_tokens?: number | null;
  error?: { code?: string | null; message?: string | null; param?: string | null } | null;
  estimated_finish?: number | null;
  finished_at?: number | null;
}

export interface ProviderEvent {
  id: string;
  created_at: number;
  level: string;
  message: string;
  type?: string | null;
  data?: unknown;
}

export interface ProviderCheckpoint {
  id: string;
  created_at: number;
  step_number: number;
  fine_tuned_model_checkpoint: string;
  metrics?: unknown;
}

export interface JobPage<T = ProviderJob> {
  data: T[];
  hasMore: boolean;
}

/** What the poller needs from the provider profile. */
export interface PollerProvider {
  retrieveJob(id: string): Promise<ProviderJob>;
  listJobs(opts: { after?: string; limit?: number }): Promise<JobPage>;
  /** Newest first; one page is enough between two polls. */
  listEvents(jobId: string, opts?: { limit?: number }): Promise<JobPage<ProviderEvent>>;
  listCheckpoints(jobId: string, opts?: { limit?: number }): Promise<JobPage<ProviderCheckpoint>>;
  cancelJob(id: string): Promise<ProviderJob>;
  /** Deletes an uploaded file (retention after training); absent: files are left at the provider. */
  deleteFile?(fileId: string): Promise<void>;
}
