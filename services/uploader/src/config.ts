import { storageEnvSchema } from '@tuneline/dataset';
import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema } from '@tuneline/runtime';
import { z } from 'zod';

/** Storage (`STORAGE_BACKEND`, `STORAGE_DIR`, `S3_*`): where the dataset builder wrote the files. */
export const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(storageEnvSchema.shape)
  .extend({
    /** JSON file merged over the built-in base model catalogue (prices). */
    MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
    /** How long one run waits for the provider to process a file before the job retries later. */
    UPLOAD_PROCESS_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
  });
export type Config = z.infer<typeof configSchema>;
