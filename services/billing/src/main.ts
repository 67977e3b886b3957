import { runService } from '@tuneline/runtime';
import { configSchema } from './config.ts';
import { billingStage } from './handler.ts';
import { inferenceUsageStage } from './inference-usage.ts';

await runService({
  service: 'billing',
  stages: [billingStage, inferenceUsageStage],
  configSchema,
  makeDeps: ({ db, log, metrics }) => ({
    db,
    log,
    onSettled: (status, charged) => metrics.creditsCharged.inc({ outcome: status }, Number(charged)),
  }),
});
