import { baseConfigSchema, runService } from '@tuneline/runtime';
import { notifierStage } from './handler.ts';

await runService({
  stage: notifierStage,
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log }) => ({ db, log }),
});
