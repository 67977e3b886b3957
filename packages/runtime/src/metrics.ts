import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** BullMQ job states reported by `tuneline_queue_jobs`. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;
type QueueState = (typeof QUEUE_STATES)[number];

/**
 * Per-process Prometheus metrics. Labels are bounded (queue, outcome, operation, HTTP status class):
 * never a job, fine-tune or license id.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  // Filled by startStage: the queue depth is read from Redis when /metrics is scraped, not on a timer.
  const depthSources = new Map<string, () => Promise<Partial<Record<QueueState, number>>>>();
  // Filled by startStage: dead-lettered rows per queue, read from Postgres when /metrics is scraped.
  const deadLetterSources = new Map<string, () => Promise<number>>();
  const providerRequests = new Counter({
    name: 'tuneline_provider_requests_total',
    help: 'HTTP requests to the fine-tuning provider, by operation and status (HTTP code, or "network" when no answer came).',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  return {
    registry,
    providerRequests,
    /** The provider's request observer (see createProvider). */
    countProviderRequest: (operation: string, status: string): void => {
      providerRequests.inc({ operation, status });
    },
    jobs: new Counter({
      name: 'tuneline_jobs_total',
      help: 'Jobs handled, by queue and outcome (completed, failed, retried, rate_limited).',
      labelNames: ['queue', 'outcome'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'tuneline_job_duration_seconds',
      help: 'Handler duration per queue.',
      labelNames: ['queue'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    outboxPublished: new Counter({
      name: 'tuneline_outbox_published_total',
      help: 'Outbox messages published to Redis.',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    recovered: new Counter({
      name: 'tuneline_recovered_total',
      help: 'Messages re-enqueued from Postgres by the recovery sweep.',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    rateLimitWaits: new Counter({
      name: 'tuneline_rate_limit_waits_total',
      help: 'Times a queue was paused because the provider answered 429.',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    rateLimitWaitSeconds: new Counter({
      name: 'tuneline_rate_limit_wait_seconds_total',
      help: 'Seconds queues were paused for provider rate limits (Retry-After).',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    creditsCharged: new Counter({
      name: 'tuneline_credits_charged_total',
      help: 'Credits charged when settling fine-tunes, by the fine-tune outcome.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'tuneline_queue_jobs',
      help: 'Jobs in each BullMQ state of the queue this service consumes, read from Redis at scrape time.',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const [queue, read] of depthSources) {
          const counts = await read().catch(() => null);
          if (!counts) continue; // Redis unreachable: no sample rather than a wrong zero.
          for (const state of QUEUE_STATES) this.set({ queue, state }, counts[state] ?? 0);
        }
      },
    }),
    deadLettered: new Counter({
      name: 'tuneline_dead_lettered_total',
      help: 'Rows this process dead-lettered: their job kept failing after RECOVERY_MAX_RETRIES recoveries.',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    deadLetters: new Gauge({
      name: 'tuneline_dead_letters',
      help: 'Rows dead-lettered and not yet retried, per queue of this service, read from Postgres at scrape time.',
      labelNames: ['queue'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const [queue, read] of deadLetterSources) {
          const n = await read().catch(() => null);
          if (n !== null) this.set({ queue }, n); // Postgres unreachable: no sample rather than a wrong zero.
        }
      },
    }),
    /** Reports the dead-lettered rows of `queue` on every scrape. */
    trackDeadLetters(queue: string, read: () => Promise<number>): void {
      deadLetterSources.set(queue, read);
    },
    /** Reports `queue`'s depth on every scrape. */
    trackQueueDepth(queue: string, read: () => Promise<Partial<Record<QueueState, number>>>): void {
      depthSources.set(queue, read);
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
