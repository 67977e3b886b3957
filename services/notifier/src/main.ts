import { runService } from '@tuneline/runtime';
import { createMailer, notifierConfigSchema, notifierStage } from './handler.ts';

await runService({
  service: 'notifier',
  stages: [notifierStage],
  configSchema: notifierConfigSchema,
  makeDeps: ({ config, db, log }) => {
    const mailer = createMailer(config);
    log.info({ via: mailer.describe }, 'notifier mail transport');
    return { db, log, mailer, mailFrom: config.MAIL_FROM };
  },
  closeDeps: async (deps) => deps.mailer.close(),
});
