import { baseConfigSchema, runService } from '@tuneline/runtime';
import { uploaderStage } from './handler.ts';

await runService({
  stage: uploaderStage,
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log }) => ({ db, log }),
});
