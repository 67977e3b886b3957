import { createStorage, findBaseModel, loadCatalogue } from '@tuneline/dataset';
import { createProvider } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { uploaderStage } from './handler.ts';

await runService({
  service: 'uploader',
  stages: [uploaderStage],
  configSchema,
  makeDeps: async ({ config, db, log, metrics }) => {
    const catalogue = loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE });
    return {
      db,
      log,
      provider: createProvider(config, { onRequest: metrics.countProviderRequest }),
      storage: await createStorage(config),
      priceOf: (model: string) => findBaseModel(model, catalogue)?.creditsPerMillionTrainingTokens,
      processTimeoutMs: config.UPLOAD_PROCESS_TIMEOUT_MS,
    };
  },
});
