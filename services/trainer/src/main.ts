import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema, pollMinIntervalConfig, runService } from '@tuneline/runtime';
import { z } from 'zod';
import { trainerStage } from './handler.ts';

const configSchema = baseConfigSchema
  .extend(providerEnvSchema.shape)
  .extend(pollMinIntervalConfig)
  .extend({
    /** The reservation is the dataset's credit estimate plus this percentage (overage stays rare). */
    RESERVATION_MARGIN_PERCENT: z.coerce.number().min(0).max(1_000).default(10),
  });

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
