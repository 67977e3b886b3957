import { createProviderSet } from '@tuneline/provider';
import { providerStageDeps, runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { trainerStage } from './handler.ts';

await runService({
  service: 'trainer',
  stages: [trainerStage],
  configSchema,
  makeDeps: (ctx) => ({
    ...providerStageDeps(ctx, createProviderSet),
    reservationMarginPercent: ctx.config.RESERVATION_MARGIN_PERCENT,
    firstPollDelayMs: ctx.config.POLL_MIN_INTERVAL_MS,
  }),
});
