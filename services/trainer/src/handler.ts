import { defineStage, type StageDeps } from '@tuneline/runtime';

export type TrainerDeps = StageDeps;

/** Stage: consumes `finetune-create`. */
export const trainerStage = defineStage<'finetune-create', TrainerDeps>({
  service: 'trainer',
  queue: 'finetune-create',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
