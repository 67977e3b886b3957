import { createProviderSet } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { trainerStage } from './handler.ts';

await runService({
  service: 'trainer',
  stages: [trainerStage],
  configSchema,
  makeDeps: ({ config, db, log, metrics }) => {
    const providers = createProviderSet(config, { onRequest: metrics.countProviderRequest });
    return {
      db,
      log,
      provider: providers.defaultProfile,
      providers,
      reservationMarginPercent: config.RESERVATION_MARGIN_PERCENT,
      firstPollDelayMs: config.POLL_MIN_INTERVAL_MS,
    };
  },
});
