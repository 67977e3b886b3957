import { runService } from '@tuneline/runtime';
import { type Config, configSchema } from './config.ts';
import { notifierStage } from './handler.ts';
import { fileMailer, type Mailer, smtpMailer } from './mailer.ts';

/** SMTP when SMTP_URL is set; otherwise each message is written as an .eml file. */
function createMailer(config: Config): Mailer {
  return config.SMTP_URL
    ? smtpMailer(config.SMTP_URL, {
        timeoutMs: config.SMTP_TIMEOUT_MS,
        maxConnections: config.SMTP_MAX_CONNECTIONS,
      })
    : fileMailer(config.MAIL_OUTBOX_DIR);
}

await runService({
  service: 'notifier',
  stages: [notifierStage],
  configSchema,
  makeDeps: ({ config, db, log }) => {
    const mailer = createMailer(config);
    log.info({ via: mailer.describe }, 'notifier mail transport');
    return {
      db,
      log,
      mailer,
      mailFrom: config.MAIL_FROM,
      ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
    };
  },
  closeDeps: async (deps) => deps.mailer.close(),
});
