import { baseConfigSchema, runService } from '@tuneline/runtime';
import { datasetBuilderStage } from './handler.ts';

await runService({
  stage: datasetBuilderStage,
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log }) => ({ db, log }),
});
