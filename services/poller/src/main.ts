import {
  DEPLOYMENT_SWEEP_SCHEDULER_ID,
  deploymentSweepSchedulerPayload,
  offsetClock,
} from '@tuneline/contracts';
import {
  AzureDeployments,
  azureManagementFromEnv,
  createProviderSet,
  type ProviderProfile,
} from '@tuneline/provider';
import {
  type Closable,
  providerStageDeps,
  runService,
  type StartedServiceContext,
  startJobScheduler,
} from '@tuneline/runtime';
import { type Config, configSchema } from './config.ts';
import {
  type DeploymentDeps,
  deploymentSweepStage,
  modelDeploymentStage,
  type PollerDeps,
  pollerStage,
} from './handler.ts';
import { Sweeper } from './sweep.ts';
import { startWebhookServer } from './webhooks.ts';

/** The whole provider profile: the stage polls through it, the webhook endpoint verifies with it. */
interface PollerServiceDeps extends PollerDeps, DeploymentDeps {
  provider: ProviderProfile;
}

await runService<Config, PollerServiceDeps>({
  service: 'poller',
  stages: [pollerStage, modelDeploymentStage, deploymentSweepStage],
  configSchema,
  makeDeps: ({ config, db, log, metrics }): PollerServiceDeps => {
    const { provider, providers } = providerStageDeps({ config, db, log, metrics }, createProviderSet);
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
    // Azure deployments (issue 20.1): ARM from the environment, or why not (a deployment then fails with it).
    const management = azureManagementFromEnv(config);
    if (!management.ok) log.info({ reason: management.problem }, 'no Azure deployments in this poller');
    return {
      db,
      log,
      provider,
      providers,
      schedule,
      sweeper,
      ...(management.ok
        ? { deployments: new AzureDeployments(management.settings) }
        : { deploymentsProblem: management.problem }),
      clock: offsetClock(config.TUNELINE_CLOCK_OFFSET_MS),
      deploymentPollMs: config.DEPLOYMENT_POLL_INTERVAL_MS,
      deploymentTimeoutMs: config.DEPLOYMENT_TIMEOUT_MS,
    };
  },
  onStarted: async (started) => {
    const { config, log } = started;
    const opened: Closable[] = [];
    if (config.DEPLOYMENT_SWEEP_INTERVAL_MS > 0)
      opened.push(
        // The deployment sweep, on every replica: one scheduler results (runtime's startJobScheduler).
        await startJobScheduler({
          queue: 'deployment-sweep',
          schedulerId: DEPLOYMENT_SWEEP_SCHEDULER_ID,
          payload: deploymentSweepSchedulerPayload(),
          redisUrl: config.REDIS_URL,
          prefix: config.QUEUE_PREFIX,
          everyMs: config.DEPLOYMENT_SWEEP_INTERVAL_MS,
          log,
        }),
      );
    const webhooks = await startWebhooks(started);
    if (webhooks) opened.push(webhooks);
    return { close: async () => void (await Promise.all(opened.map((c) => c.close()))) };
  },
});

/** The provider webhook endpoint (`WEBHOOK_PORT`), if configured. */
async function startWebhooks({
  config,
  deps,
  log,
  publishCaptured,
}: StartedServiceContext<Config, PollerServiceDeps>): Promise<Closable | undefined> {
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
}
