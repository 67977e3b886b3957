import { defineStage, type StageDeps } from '@tuneline/runtime';

export type NotifierDeps = StageDeps;

/** Stage: consumes `notify-send`. */
export const notifierStage = defineStage<'notify-send', NotifierDeps>({
  service: 'notifier',
  queue: 'notify-send',
  async handle(message, ctx) {
    ctx.log.info({ message }, 'received');
  },
});
