import { createProvider } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { trainerStage } from './handler.ts';

await runService({
  service: 'trainer',
  stages: [trainerStage],
  configSchema,
  makeDeps: ({ config, db, log, metrics }) => ({
    db,
    log,
    provider: createProvider(config, { onRequest: metrics.countProviderRequest }),
    reservationMarginPercent: config.RESERVATION_MARGIN_PERCENT,
    firstPollDelayMs: config.POLL_MIN_INTERVAL_MS,
  }),
});
