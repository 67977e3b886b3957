import type { PollerProvider } from '@tuneline/poller';

/**
 * Counts the poller's provider calls, in total and per method: the sweep's figure of merit (calls
 * per running job) in the poller bench, and what the stage tests assert about them.
 */
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
  /** Retention after training: forwarded, not counted (not a poll call). */
  async deleteFile(fileId: string): Promise<void> {
    await this.inner.deleteFile?.(fileId);
  }
}
