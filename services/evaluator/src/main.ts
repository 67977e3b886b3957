import { createStorage } from '@tuneline/dataset';
import { createProviderSet } from '@tuneline/provider';
import { providerStageDeps, runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { evaluatorStage } from './handler.ts';

await runService({
  service: 'evaluator',
  stages: [evaluatorStage],
  configSchema,
  makeDeps: async (ctx) => ({
    // Each model is asked at its fine-tune's own provider (the uploader's, trainer's and poller's set).
    ...providerStageDeps(ctx, createProviderSet),
    storage: await createStorage(ctx.config),
    timeLimitMs: ctx.config.EVALUATION_TIME_LIMIT_MS,
    concurrency: ctx.config.EVALUATION_CONCURRENCY,
    callAttempts: ctx.config.EVALUATION_CALL_ATTEMPTS,
    maxTokens: ctx.config.EVALUATION_MAX_TOKENS,
  }),
});
