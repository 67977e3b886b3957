import { findBaseModel, LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { createProvider } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { uploaderStage } from './handler.ts';

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
