import { defineStage, type StageDeps } from '@tuneline/runtime';

export type UploaderDeps = StageDeps;

/** Stage: consumes `files-upload`. */
export const uploaderStage = defineStage<'files-upload', UploaderDeps>({
  service: 'uploader',
  queue: 'files-upload',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
