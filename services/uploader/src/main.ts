import { findBaseModel, LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema, runService } from '@tuneline/runtime';
import { z } from 'zod';
import { uploaderStage } from './handler.ts';

const configSchema = baseConfigSchema.extend(providerEnvSchema.shape).extend({
  /** Where the dataset builder wrote the files (default `<repo>/.tuneline/storage`). */
  STORAGE_DIR: z.string().min(1).optional(),
  /** JSON file merged over the built-in base model catalogue (prices). */
  MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
  /** How long one run waits for the provider to process a file before the job retries later. */
  UPLOAD_PROCESS_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
});

await runService({
  service: 'uploader',
  stages: [uploaderStage],
  configSchema,
  makeDeps: ({ config, db, log, metrics }) => {
    const catalogue = loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE });
    return {
      db,
      log,
      provider: createProvider(config, { onRequest: metrics.countProviderRequest }),
      storage: new LocalFileStorage(config.STORAGE_DIR),
      priceOf: (model: string) => findBaseModel(model, catalogue)?.creditsPerMillionTrainingTokens,
      processTimeoutMs: config.UPLOAD_PROCESS_TIMEOUT_MS,
    };
  },
});
