import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { HttpError } from '../http.ts';

/**
 * The API process's Prometheus metrics (`GET /metrics`, admin key). Gateway series are labelled by
 * the fine-tune's *base* model (a bounded set; fine-tuned model names grow with every license) and by
 * outcome: `ok`, `refused` (402), `rate_limited` (429, ours), `provider_rate_limited` (the provider's
 * 429), `provider_error`, `invalid`, `not_found`, `replay`, `conflict`.
 */
export function createApiMetrics() {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'api' });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'tuneline_gateway_requests_total',
      help: 'Chat completion calls through the gateway, by base model and outcome.',
      labelNames: ['model', 'outcome'] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'tuneline_gateway_tokens_total',
      help: 'Tokens the provider reported for gateway calls, by base model and kind (prompt, completion).',
      labelNames: ['model', 'kind'] as const,
      registers: [registry],
    }),
    credits: new Counter({
      name: 'tuneline_gateway_credits_total',
      help: 'Credits charged for gateway calls, by base model.',
      labelNames: ['model'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'tuneline_gateway_request_duration_seconds',
      help: 'Gateway call duration (authentication to answer), by outcome.',
      labelNames: ['outcome'] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    overhead: new Histogram({
      name: 'tuneline_gateway_overhead_seconds',
      help: 'Gateway time outside the provider call (authentication, hold, settle), successful calls.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    unpricedModel: new Counter({
      name: 'tuneline_gateway_unpriced_model_total',
      help: 'Calls on a base model the catalogue has no inference price for (charged the fallback price).',
      labelNames: ['model'] as const,
      registers: [registry],
    }),
    holdGroup: new Histogram({
      name: 'tuneline_gateway_hold_group_size',
      help: 'Holds written together in one statement (group commit).',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    settleGroup: new Histogram({
      name: 'tuneline_gateway_settle_group_size',
      help: 'Settlements written together in one statement (group commit).',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    expiredHolds: new Counter({
      name: 'tuneline_gateway_holds_expired_total',
      help: 'Holds the sweep released because nobody settled or released them within the expiry bound.',
      registers: [registry],
    }),
    settledWithoutHold: new Counter({
      name: 'tuneline_gateway_settled_without_hold_total',
      help: 'Settlements that found no hold (lost with a Postgres crash: holds commit asynchronously) and charged nothing.',
      registers: [registry],
    }),
    meteringDeferred: new Counter({
      name: 'tuneline_gateway_metering_deferred_total',
      help: 'Settlements that failed after the provider answered and went through the outbox, by stage reached (outbox, memory).',
      labelNames: ['via'] as const,
      registers: [registry],
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;

/** A gateway call's outcome label, from the error it ended with (none: ok). */
export function outcomeOf(err: unknown): string {
  if (err === undefined) return 'ok';
  if (!(err instanceof HttpError)) return 'error';
  switch (err.status) {
    case 400:
      return 'invalid';
    case 402:
      return 'refused';
    case 404:
      return 'not_found';
    case 409:
    case 422:
      return 'conflict';
    case 429:
      return err.message.startsWith('provider') ? 'provider_rate_limited' : 'rate_limited';
    case 502:
      return 'provider_error';
    default:
      return `http_${err.status}`;
  }
}
