import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Per-process Prometheus metrics. Labels are bounded (queue, outcome): never a job id. */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
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
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
