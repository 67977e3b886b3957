import { storageEnvSchema } from '@tuneline/dataset';
import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema } from '@tuneline/runtime';
import { z } from 'zod';

/** Storage (`STORAGE_BACKEND`, `STORAGE_DIR`, `S3_*`): where the dataset builder wrote the testing file. */
export const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(storageEnvSchema.shape)
  .extend({
    /**
     * How long one evaluation may take, from its start: past it the run ends and the outcome e-mail goes
     * without the evaluation, saying so. Answers already scored stay charged.
     */
    EVALUATION_TIME_LIMIT_MS: z.coerce
      .number()
      .int()
      .min(1_000)
      .default(15 * 60_000),
    /** Chat calls one evaluation job keeps in flight. */
    EVALUATION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
    /** Tries of one example's call on a transient provider error before the job retries the rest later. */
    EVALUATION_CALL_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
    /** Upper bound of one answer's tokens (`max_completion_tokens`). */
    EVALUATION_MAX_TOKENS: z.coerce.number().int().min(16).max(100_000).default(1_024),
  });
export type Config = z.infer<typeof configSchema>;
