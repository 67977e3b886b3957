import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema } from '@tuneline/runtime';
import { z } from 'zod';

export const configSchema = baseConfigSchema.extend(providerEnvSchema.shape).extend({
  /** Where the dataset builder wrote the files (default `<repo>/.tuneline/storage`). */
  STORAGE_DIR: z.string().min(1).optional(),
  /** JSON file merged over the built-in base model catalogue (prices). */
  MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
  /** How long one run waits for the provider to process a file before the job retries later. */
  UPLOAD_PROCESS_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
});
export type Config = z.infer<typeof configSchema>;
