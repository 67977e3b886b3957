import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { type RunningService, runService } from '@tuneline/runtime';
import { pollerConfigSchema } from './config.ts';
import { type PollerDeps, pollerStage } from './handler.ts';
import { Sweeper } from './sweep.ts';
import { startWebhookServer, type WebhookServer } from './webhooks.ts';

let service: RunningService | undefined;
let webhooks: WebhookServer | undefined;

service = await runService({
  service: 'poller',
  stages: [pollerStage],
  configSchema: pollerConfigSchema.extend(providerEnvSchema.shape),
  makeDeps: async ({ config, db, log, metrics }): Promise<PollerDeps> => {
    const provider = createProvider(config, { onRequest: metrics.countProviderRequest });
    const schedule = {
      intervalMs: config.POLL_INTERVAL_MS,
      minIntervalMs: config.POLL_MIN_INTERVAL_MS,
      finishGraceMs: config.POLL_FINISH_GRACE_MS,
    };
    if (config.WEBHOOK_PORT !== undefined) {
      if (!config.PROVIDER_WEBHOOK_SECRET) {
        log.warn('WEBHOOK_PORT is set without PROVIDER_WEBHOOK_SECRET: every delivery will be refused');
      }
      // A verified delivery becomes an immediate poll, published at once rather than on the relay timer.
      webhooks = await startWebhookServer({
        db,
        log,
        port: config.WEBHOOK_PORT,
        host: '0.0.0.0',
        unwrap: (body, headers) => provider.unwrapWebhook(body, headers),
        publish: async (rows) => service?.stages[0]?.publishCaptured(rows),
      });
      log.info({ url: webhooks.url }, 'provider webhook endpoint listening');
    }
    return {
      db,
      log,
      provider,
      schedule,
      sweeper: new Sweeper({
        db,
        provider,
        log,
        schedule,
        maxAgeMs: config.POLL_SWEEP_MAX_AGE_MS,
        maxPages: config.POLL_SWEEP_MAX_PAGES,
      }),
    };
  },
  closeDeps: async () => {
    await webhooks?.close();
  },
});
