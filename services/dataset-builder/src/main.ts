import { offsetClock } from '@tuneline/contracts';
import { createStorage, loadCatalogue } from '@tuneline/dataset';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { datasetBuilderStage } from './handler.ts';
import { retrainCheckStage } from './retrain.ts';
import { startRetrainScheduler } from './retrain-scheduler.ts';

await runService({
  service: 'dataset-builder',
  stages: [datasetBuilderStage, retrainCheckStage],
  configSchema,
  makeDeps: async ({ config, db, log }) => ({
    db,
    log,
    storage: await createStorage(config),
    catalogue: loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE }),
    clock: offsetClock(config.TUNELINE_CLOCK_OFFSET_MS),
  }),
  onStarted: ({ config, log }) =>
    config.RETRAIN_CHECK_INTERVAL_MS > 0
      ? startRetrainScheduler({
          redisUrl: config.REDIS_URL,
          prefix: config.QUEUE_PREFIX,
          everyMs: config.RETRAIN_CHECK_INTERVAL_MS,
          log,
        })
      : undefined,
});
