import { LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { datasetBuilderStage } from './handler.ts';

await runService({
  service: 'dataset-builder',
  stages: [datasetBuilderStage],
  configSchema,
  makeDeps: ({ config, db, log }) => ({
    db,
    log,
    storage: new LocalFileStorage(config.STORAGE_DIR),
    catalogue: loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE }),
  }),
});
