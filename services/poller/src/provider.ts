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
}

/** Counts provider calls (the sweep's figure of merit: calls per running job). */
export class CountingProvider implements PollerProvider {
  calls = 0;
  readonly byMethod: Record<string, number> = {};

  constructor(private readonly inner: PollerProvider) {}

  private count(method: string): void {
    this.calls++;
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
  }

  retrieveJob(id: string) {
    this.count('retrieveJob');
    return this.inner.retrieveJob(id);
  }
  listJobs(opts: { after?: string; limit?: number }) {
    this.count('listJobs');
    return this.inner.listJobs(opts);
  }
  listEvents(jobId: string, opts?: { limit?: number }) {
    this.count('listEvents');
    return this.inner.listEvents(jobId, opts);
  }
  listCheckpoints(jobId: string, opts?: { limit?: number }) {
    this.count('listCheckpoints');
    return this.inner.listCheckpoints(jobId, opts);
  }
  cancelJob(id: string) {
    this.count('cancelJob');
    return this.inner.cancelJob(id);
  }
}
