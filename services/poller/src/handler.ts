import { defineStage, type StageDeps } from '@tuneline/runtime';

export type PollerDeps = StageDeps;

/** Stage: consumes `finetune-poll`. */
export const pollerStage = defineStage<'finetune-poll', PollerDeps>({
  service: 'poller',
  queue: 'finetune-poll',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
