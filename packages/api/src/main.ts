import { formatZodError, offsetClock } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { createDb } from '@tuneline/db';
import {
  azureManagementFromEnv,
  createProviderSet,
  type ProviderEnv,
  providerEnvSchema,
  resolveProviderSettings,
} from '@tuneline/provider';
import { ConfigError, createLogger, createRedis, loadConfig } from '@tuneline/runtime';
import { buildApi } from './app.ts';
import { apiConfigSchema } from './config.ts';
import { createChatProviders } from './provider.ts';

/** Starts the API from the environment; returns a stop function (also wired to SIGTERM/SIGINT by runApi). */
export async function startApi(env: NodeJS.ProcessEnv = process.env, portOverride?: number) {
  const config = loadConfig(apiConfigSchema, env);
  const log = createLogger('api', config.LOG_LEVEL);
  const db = createDb(config.DATABASE_URL, {
    max: config.DATABASE_POOL_MAX ?? 20,
    applicationName: 'tuneline-api',
  });
  const redis = createRedis(config.REDIS_URL, 'producer');
  // The gateway's providers, one per provider configured (a fine-tune is served by its own): SDK
  // retries as configured for it (default none: the provider's 429 is the caller's), non-streamed
  // calls over a keep-alive connection pool each.
  const parsedProvider = providerEnvSchema.safeParse({
    ...env,
    PROVIDER_MAX_RETRIES: String(config.GATEWAY_PROVIDER_MAX_RETRIES),
  });
  if (!parsedProvider.success)
    throw new ConfigError(`Invalid configuration: ${formatZodError(parsedProvider.error)}`);
  const providerEnv = parsedProvider.data;
  const chat = createChatProviders(providerEnv);
  const app = await buildApi({
    db,
    redis,
    queuePrefix: config.QUEUE_PREFIX,
    catalogue: loadCatalogue(env),
    provider: chat.provider,
    chatProviders: chat.chatProviders,
    ...providerOptions(env),
    deployments: deploymentOptions(providerEnv),
    adminKey: config.ADMIN_API_KEY,
    bodyLimit: config.API_BODY_LIMIT_BYTES,
    rateLimit: {
      requestsPerMinute: config.GATEWAY_REQUESTS_PER_MINUTE,
      tokensPerMinute: config.GATEWAY_TOKENS_PER_MINUTE,
    },
    logger: log,
    reservationMarginPercent: config.RESERVATION_MARGIN_PERCENT,
    clock: offsetClock(config.TUNELINE_CLOCK_OFFSET_MS),
    gateway: {
      cacheTtlMs: config.GATEWAY_CACHE_TTL_MS,
      holdCommit: config.GATEWAY_HOLD_COMMIT,
      promptCount: config.GATEWAY_PROMPT_COUNT,
      holdExpiryMs: config.GATEWAY_HOLD_EXPIRY_SECONDS * 1_000,
      idempotencyRetentionMs: config.GATEWAY_IDEMPOTENCY_RETENTION_HOURS * 3_600_000,
      sweepIntervalMs: config.GATEWAY_SWEEP_INTERVAL_SECONDS * 1_000,
    },
  });
  const address = await app.listen({ port: portOverride ?? config.API_PORT, host: config.API_HOST });
  log.info({ address }, 'api listening');
  const stop = async () => {
    await app.close();
    chat.close();
    redis.disconnect();
    await db.destroy();
  };
  return { app, address, stop };
}

export async function runApi(env: NodeJS.ProcessEnv = process.env, portOverride?: number): Promise<void> {
  const { stop } = await startApi(env, portOverride);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
  await stop();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await runApi();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Like the workers: a readable message naming each bad variable, and EX_CONFIG.
    process.stderr.write(`api: ${err.message}\n`);
    process.exit(78);
  }
}

/**
 * Which provider serves fine-tunes naming none, and why Azure deployments cannot be made here (the API
 * only records them; the poller makes them, from the same variables).
 */
function deploymentOptions(env: ProviderEnv) {
  const management = azureManagementFromEnv(env);
  return {
    defaultProvider: resolveProviderSettings(env).kind,
    ...(management.ok ? {} : { problem: management.problem }),
  };
}

/** The providers the API checks requests against, and how it deletes a discarded model. */
function providerOptions(env: NodeJS.ProcessEnv) {
  const set = createProviderSet(providerEnvSchema.parse(env));
  return {
    providers: set.configured(),
    deleteModel: (f: { provider: string | null; model: string; providerJobId: string | null }) =>
      set.for(f.provider).deleteModel(f.model, f.providerJobId),
  };
}
