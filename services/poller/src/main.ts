import { createProviderSet, type ProviderProfile } from '@tuneline/provider';
import { runService } from '@tuneline/runtime';
import { type Config, configSchema } from './config.ts';
import { type PollerDeps, pollerStage } from './handler.ts';
import { Sweeper } from './sweep.ts';
import { startWebhookServer } from './webhooks.ts';

/** The whole provider profile: the stage polls through it, the webhook endpoint verifies with it. */
interface PollerServiceDeps extends PollerDeps {
  provider: ProviderProfile;
}

await runService<Config, PollerServiceDeps>({
  service: 'poller',
  stages: [pollerStage],
  configSchema,
  makeDeps: ({ config, db, log, metrics }): PollerServiceDeps => {
    const providers = createProviderSet(config, { onRequest: metrics.countProviderRequest });
    const provider = providers.defaultProfile;
    const schedule = {
      intervalMs: config.POLL_INTERVAL_MS,
      minIntervalMs: config.POLL_MIN_INTERVAL_MS,
      finishGraceMs: config.POLL_FINISH_GRACE_MS,
    };
    const sweeper = new Sweeper({
      db,
      provider,
      log,
      schedule,
      maxAgeMs: config.POLL_SWEEP_MAX_AGE_MS,
      maxPages: config.POLL_SWEEP_MAX_PAGES,
      // Fine-tunes that name a provider are polled one by one through it.
      follows: (row) => row.provider === null,
    });
    return { db, log, provider, providers, schedule, sweeper };
  },
  onStarted: async ({ config, deps, log, publishCaptured }) => {
    if (config.WEBHOOK_PORT === undefined) return undefined;
    if (!config.PROVIDER_WEBHOOK_SECRET) {
      log.warn('WEBHOOK_PORT is set without PROVIDER_WEBHOOK_SECRET: every delivery will be refused');
    }
    // A verified delivery becomes an immediate poll, published at once rather than on the relay timer.
    const webhooks = await startWebhookServer({
      db: deps.db,
      log,
      port: config.WEBHOOK_PORT,
      host: '0.0.0.0',
      unwrap: (body, headers) => deps.provider.unwrapWebhook(body, headers),
      publish: publishCaptured,
    });
    log.info({ url: webhooks.url }, 'provider webhook endpoint listening');
    return webhooks;
  },
});
