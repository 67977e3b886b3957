import { baseConfigSchema, runService } from '@tuneline/runtime';
import { billingStage } from './handler.ts';

await runService({
  service: 'billing',
  stages: [billingStage],
  configSchema: baseConfigSchema,
  makeDeps: ({ db, log, metrics }) => ({
    db,
    log,
    onSettled: (status, charged) => metrics.creditsCharged.inc({ outcome: status }, Number(charged)),
  }),
});
