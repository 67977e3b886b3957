import { baseConfigSchema, runService } from '@tuneline/runtime';
import { pollerStage } from './handler.ts';

await runService({
  stage: pollerStage,
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log }) => ({ db, log }),
});
