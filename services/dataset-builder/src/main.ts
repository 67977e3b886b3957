import { LocalFileStorage, loadCatalogue } from '@tuneline/dataset';
import { baseConfigSchema, runService } from '@tuneline/runtime';
import { z } from 'zod';
import { datasetBuilderStage } from './handler.ts';

const configSchema = baseConfigSchema.extend({
  /** Where dataset files are written (default `<repo>/.tuneline/storage`). */
  STORAGE_DIR: z.string().min(1).optional(),
  /** JSON file merged over the built-in base model catalogue. */
  MODEL_CATALOGUE_FILE: z.string().min(1).optional(),
});

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
