import { ConfigError, formatZodError } from '@tuneline/contracts';
import { z } from 'zod';

export { ConfigError };

/** Settings every worker shares. Services extend this with their own. */
export const baseConfigSchema = z.object({
  DATABASE_URL: z.url({ message: 'must be a postgres:// URL' }),
  REDIS_URL: z.url({ message: 'must be a redis:// URL' }),
  /** BullMQ key prefix: lets several deployments (or test files) share one Redis. */
  QUEUE_PREFIX: z.string().min(1).default('tuneline'),
  /** Port for /livez, /readyz and /metrics; 0 picks a free port. */
  HEALTH_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  /** Postgres connections one process may open (default: WORKER_CONCURRENCY + 2). */
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(1000).optional(),
  /** How long SIGTERM waits for in-flight jobs before releasing them to other workers. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(25_000),
  /** How often the stage re-enqueues, from Postgres, the rows waiting on it (after Redis lost data). */
  RECOVERY_INTERVAL_MS: z.coerce.number().int().min(100).default(30_000),
  /**
   * How many times the recovery sweep re-enqueues a job it finds failed for good (its attempts spent)
   * while the row still waits. The next time it finds the job failed, the row is dead-lettered: left
   * alone, listed with its reason, counted in `tuneline_dead_letters`, retried only by an admin call.
   */
  RECOVERY_MAX_RETRIES: z.coerce.number().int().min(0).max(10_000).default(10),
  /**
   * How long a job's lock lasts without renewal: a worker that died mid-job has its job handed to
   * another after about this long (BullMQ's stalled-job check runs at the same interval).
   */
  JOB_LOCK_MS: z.coerce.number().int().min(1_000).default(30_000),
  /** How often the outbox relay looks for messages a crashed worker committed but did not publish. */
  OUTBOX_INTERVAL_MS: z.coerce.number().int().min(10).default(1_000),
  /**
   * Moves the one clock the date rules read (issue 21.5: training closes, shutdowns, lifecycle
   * warnings), in ms; for tests, the simulator and the demo. 0 in production.
   */
  TUNELINE_CLOCK_OFFSET_MS: z.coerce.number().int().default(0),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * The shortest gap between two polls of one job: the poller's, and the delay of a new job's first poll,
 * which the trainer queues. One definition, so both read the same default.
 */
export const pollMinIntervalConfig = {
  POLL_MIN_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 60_000),
};

/**
 * The credits reserved above a fine-tune's estimate, in percent (overage stays rare): the trainer
 * reserves with it and the API refuses at once (402) what the trainer would. One definition, one default.
 */
export const reservationMarginConfig = {
  RESERVATION_MARGIN_PERCENT: z.coerce.number().min(0).max(1_000).default(10),
};

/**
 * Parses the environment once at start-up. Each bad or missing variable is named:
 * `Invalid configuration: REDIS_URL: must be a redis:// URL`.
 */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.output<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`Invalid configuration: ${formatZodError(parsed.error)}`);
  return parsed.data;
}
