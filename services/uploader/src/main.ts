import { createStorage, findBaseModel, loadCatalogue, trainingPriceAt } from '@tuneline/dataset';
import { createProviderSet } from '@tuneline/provider';
import { providerStageDeps, runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { uploaderStage } from './handler.ts';

await runService({
  service: 'uploader',
  stages: [uploaderStage],
  configSchema,
  makeDeps: async (ctx) => {
    const catalogue = loadCatalogue({ MODEL_CATALOGUE_FILE: ctx.config.MODEL_CATALOGUE_FILE });
    return {
      ...providerStageDeps(ctx, createProviderSet),
      storage: await createStorage(ctx.config),
      priceOf: (model: string, provider?: string | null) => {
        const base = findBaseModel(model, catalogue);
        return base ? trainingPriceAt(base, provider) : undefined;
      },
      processTimeoutMs: ctx.config.UPLOAD_PROCESS_TIMEOUT_MS,
    };
  },
});
