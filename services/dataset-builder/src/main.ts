import { createStorage, loadCatalogue } from '@tuneline/dataset';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { datasetBuilderStage } from './handler.ts';

await runService({
  service: 'dataset-builder',
  stages: [datasetBuilderStage],
  configSchema,
  makeDeps: async ({ config, db, log }) => ({
    db,
    log,
    storage: await createStorage(config),
    catalogue: loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE }),
  }),
});
