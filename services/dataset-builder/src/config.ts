import { storageEnvSchema } from '@tuneline/dataset';
import { baseConfigSchema } from '@tuneline/runtime';
import { z } from 'zod';

/** Storage (`STORAGE_BACKEND`, `STORAGE_DIR`, `S3_*`): where dataset files are written. */
export const configSchema = baseConfigSchema.extend(storageEnvSchema.shape).extend({
  /** JSON file merged over the built-in base model catalogue. */
  MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
  /** How often every enabled training profile is checked against its policy (0: never; manual only). */
  RETRAIN_CHECK_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
});
export type Config = z.infer<typeof configSchema>;
