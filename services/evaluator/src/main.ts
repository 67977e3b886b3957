import { createStorage } from '@tuneline/dataset';
import { createProviderSet } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { evaluatorStage } from './handler.ts';

await runService({
  service: 'evaluator',
  stages: [evaluatorStage],
  configSchema,
  makeDeps: async ({ config, db, log, metrics }) => {
    // Each model is asked at its fine-tune's own provider (the uploader's, trainer's and poller's set).
    const providers = createProviderSet(config, { onRequest: metrics.countProviderRequest });
    return {
      db,
      log,
      provider: providers.defaultProfile,
      providers,
      storage: await createStorage(config),
      timeLimitMs: config.EVALUATION_TIME_LIMIT_MS,
      concurrency: config.EVALUATION_CONCURRENCY,
      callAttempts: config.EVALUATION_CALL_ATTEMPTS,
      maxTokens: config.EVALUATION_MAX_TOKENS,
    };
  },
});
