import { createStorage, findBaseModel, loadCatalogue, trainingPriceAt } from '@tuneline/dataset';
import { createProviderSet } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { uploaderStage } from './handler.ts';

await runService({
  service: 'uploader',
  stages: [uploaderStage],
  configSchema,
  makeDeps: async ({ config, db, log, metrics }) => {
    const catalogue = loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE });
    const providers = createProviderSet(config, { onRequest: metrics.countProviderRequest });
    return {
      db,
      log,
      provider: providers.defaultProfile,
      providers,
      storage: await createStorage(config),
      priceOf: (model: string, provider?: string | null) => {
        const base = findBaseModel(model, catalogue);
        return base ? trainingPriceAt(base, provider) : undefined;
      },
      processTimeoutMs: config.UPLOAD_PROCESS_TIMEOUT_MS,
    };
  },
});
