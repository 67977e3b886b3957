import { baseConfigSchema, reservationMarginConfig } from '@tuneline/runtime';
import { z } from 'zod';

/** The API's settings: the shared ones (DATABASE_URL, REDIS_URL, QUEUE_PREFIX, ...) plus its own. */
export const apiConfigSchema = baseConfigSchema.extend({
  API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  API_HOST: z.string().min(1).default('0.0.0.0'),
  /** Ops key for /v1/admin/* and /admin/queues; admin rows in api_keys work too. */
  ADMIN_API_KEY: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.string().min(16, 'must be at least 16 characters').optional(),
  ),
  /** Largest request body accepted, in bytes. */
  API_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(20 * 1024 * 1024),
  /**
   * SDK retries of a gateway call to the provider. 0 by default: the provider's 429 goes back to the
   * caller with its headers, and a call is never generated (and billed by the provider) twice.
   */
  GATEWAY_PROVIDER_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(0),
  /** Gateway calls per minute per license (token bucket in Redis); 0 turns the limit off. */
  GATEWAY_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Gateway tokens per minute per license, counted at admission as the call's worst case; 0: off. */
  GATEWAY_TOKENS_PER_MINUTE: z.coerce.number().int().min(0).default(2_000_000),
  /** How long the gateway keeps an API key's holder and a model name's resolution (ms; 0: not cached). */
  GATEWAY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(10_000).default(1_000),
  /** `async`: a gateway hold commits without waiting for its WAL flush (settlements always wait). */
  GATEWAY_HOLD_COMMIT: z.enum(['async', 'durable']).default('async'),
  /** `bound`: the prompt is held at its UTF-8 byte count, counted exactly only near an empty balance. */
  GATEWAY_PROMPT_COUNT: z.enum(['bound', 'exact']).default('bound'),
  /** A hold neither settled nor released after this long is released by the sweep (seconds). */
  GATEWAY_HOLD_EXPIRY_SECONDS: z.coerce.number().int().min(60).default(3_600),
  /** How long an Idempotency-Key's first answer is kept for replays (hours). */
  GATEWAY_IDEMPOTENCY_RETENTION_HOURS: z.coerce.number().min(1).default(24),
  /** How often the API sweeps expired holds and old Idempotency-Keys (seconds; 0: never). */
  GATEWAY_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(60),
  /** The trainer's margin: a fine-tune whose estimate plus it exceeds the credits is refused (402). */
  ...reservationMarginConfig,
});
export type ApiConfig = z.output<typeof apiConfigSchema>;
