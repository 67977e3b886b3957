import { offsetClock } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { runService } from '@tuneline/runtime';
import { type Config, configSchema } from './config.ts';
import { lifecycleSweepStage, notifierStage } from './handler.ts';
import { startLifecycleSweepScheduler } from './lifecycle-sweep.ts';
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
  stages: [notifierStage, lifecycleSweepStage],
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
      catalogue: loadCatalogue({ MODEL_CATALOGUE_FILE: config.MODEL_CATALOGUE_FILE }),
      clock: offsetClock(config.TUNELINE_CLOCK_OFFSET_MS),
    };
  },
  closeDeps: async (deps) => deps.mailer.close(),
  onStarted: ({ config, log }) =>
    config.LIFECYCLE_SWEEP_INTERVAL_MS > 0
      ? startLifecycleSweepScheduler({
          redisUrl: config.REDIS_URL,
          prefix: config.QUEUE_PREFIX,
          everyMs: config.LIFECYCLE_SWEEP_INTERVAL_MS,
          log,
        })
      : undefined,
});
