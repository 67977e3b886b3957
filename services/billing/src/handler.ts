import { defineStage, type StageDeps } from '@tuneline/runtime';

export type BillingDeps = StageDeps;

/** Stage: consumes `billing-settle`. */
export const billingStage = defineStage<'billing-settle', BillingDeps>({
  service: 'billing',
  queue: 'billing-settle',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
