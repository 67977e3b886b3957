import { baseConfigSchema, runService } from '@tuneline/runtime';
import { trainerStage } from './handler.ts';

await runService({
  stage: trainerStage,
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log }) => ({ db, log }),
});
