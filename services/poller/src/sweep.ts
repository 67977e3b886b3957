import { type Db, type FineTuneRecord, listFollowedFineTunes } from '@tuneline/db';
import { ProviderError } from '@tuneline/provider';
import type { Logger } from '@tuneline/runtime';
import { applyJobSnapshot, snapshotDiffers } from './apply.ts';
import type { PollerProvider, ProviderJob } from './provider.ts';
import type { PollScheduleConfig } from './schedule.ts';

export interface SweepStats {
  /** Provider calls the last sweep made (list pages plus details of jobs that changed). */
  calls: number;
  /** Fine-tunes the sweep looked at. */
  followed: number;
  /** Of those, found in the listed pages. */
  found: number;
  changed: number;
}

export interface SweeperOptions {
  db: Db;
  provider: PollerProvider;
  log: Logger;
  schedule: PollScheduleConfig;
  maxAgeMs: number;
  maxPages: number;
  pageSize?: number;
  /** Which followed fine-tunes this sweeper's provider holds (default: all). */
  follows?: (row: FineTuneRecord) => boolean;
}

/**
 * Refreshes every followed fine-tune from the provider's job list (100 jobs a call) instead of one
 * retrieve per job, and applies what changed. Scheduled polls read the latest snapshot while it is
 * younger than `maxAgeMs`; concurrent polls share one sweep in flight.
 */
export class Sweeper {
  private snapshot: { at: number; jobs: Map<string, ProviderJob> } | null = null;
  private inFlight: Promise<Map<string, ProviderJob>> | null = null;
  lastStats: SweepStats | null = null;
  sweeps = 0;

  constructor(private readonly opts: SweeperOptions) {}

  /** The freshest known state of a provider job: from a young snapshot, a new sweep, or a retrieve. */
  async jobState(providerJobId: string): Promise<ProviderJob> {
    const fresh = this.snapshot && Date.now() - this.snapshot.at < this.opts.maxAgeMs ? this.snapshot : null;
    const known = fresh?.jobs.get(providerJobId);
    if (known) return known;
    const jobs = await this.sweep();
    // Older than the pages a sweep reads (or not yet listed): ask for it alone.
    return jobs.get(providerJobId) ?? this.opts.provider.retrieveJob(providerJobId);
  }

  /** Runs a sweep now (or joins the one in flight). */
  sweep(): Promise<Map<string, ProviderJob>> {
    this.inFlight ??= this.run().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async run(): Promise<Map<string, ProviderJob>> {
    const { db, provider, maxPages } = this.opts;
    const followed = await listFollowedFineTunes(db);
    const wanted = new Map<string, FineTuneRecord>();
    const follows = this.opts.follows ?? (() => true);
    for (const f of followed) if (f.providerJobId && follows(f)) wanted.set(f.providerJobId, f);
    const jobs = new Map<string, ProviderJob>();
    let calls = 0;
    let after: string | undefined;
    let missing = wanted.size;
    for (let page = 0; page < maxPages && missing > 0; page++) {
      calls++;
      const result = await provider.listJobs({
        limit: this.opts.pageSize ?? 100,
        ...(after ? { after } : {}),
      });
      for (const job of result.data) {
        if (wanted.has(job.id) && !jobs.has(job.id)) missing--;
        jobs.set(job.id, job);
      }
      const last = result.data.at(-1);
      if (!result.hasMore || !last) break;
      after = last.id;
    }
    this.snapshot = { at: Date.now(), jobs };
    this.sweeps++;

    let changed = 0;
    for (const [jobIdValue, row] of wanted) {
      const job = jobs.get(jobIdValue);
      if (!job || !snapshotDiffers(row, job)) continue;
      changed++;
      const before = countCalls(provider);
      // This fine-tune's own request, not the job that triggered the sweep: its logs must carry its id.
      const log = this.opts.log.child({ correlationId: row.correlationId, fineTuneId: row.id });
      await applyJobSnapshot(db, provider, row, job, { schedule: this.opts.schedule, log }).then(
        () => log.info({ providerStatus: job.status }, 'sweep applied the provider job state'),
        (err: unknown) => {
          // One job's trouble must not stop the sweep; its own poll retries it.
          if (isRateLimit(err)) throw err;
          log.warn({ err: String(err) }, 'sweep could not apply a job');
        },
      );
      calls += countCalls(provider) - before;
    }
    this.lastStats = { calls, followed: wanted.size, found: wanted.size - missing, changed };
    this.opts.log.info(this.lastStats, 'poll sweep: provider calls for the followed jobs');
    return jobs;
  }
}

function countCalls(provider: PollerProvider): number {
  return 'calls' in provider && typeof provider.calls === 'number' ? provider.calls : 0;
}

function isRateLimit(err: unknown): boolean {
  return err instanceof ProviderError && err.kind === 'rate_limited';
}
