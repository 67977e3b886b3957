import { defineStage, type StageDeps } from '@tuneline/runtime';

export type DatasetBuilderDeps = StageDeps;

/** Stage: consumes `fine-tune-requests`. */
export const datasetBuilderStage = defineStage<'fine-tune-requests', DatasetBuilderDeps>({
  service: 'dataset-builder',
  queue: 'fine-tune-requests',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
