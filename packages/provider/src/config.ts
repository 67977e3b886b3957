import { ConfigError } from '@tuneline/contracts';
import { z } from 'zod';

/** Together's API when TOGETHER_BASE_URL is not given (the together-ai package's own default). */
export const TOGETHER_BASE_URL = 'https://api.together.ai/v1';

/** Unset and empty variables both count as "not given". */
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());
const optionalUrl = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z.url({ message: 'must be a URL' }).optional(),
);

/**
 * Provider settings from the environment. A plain object schema, so a service can
 * `baseConfigSchema.extend(providerEnvSchema.shape)`.
 */
export const providerEnvSchema = z.object({
  /**
   * Which provider; when unset: azure if its endpoint and key are set, else openai if its key is set,
   * else together if its key is set, else the simulator.
   */
  PROVIDER: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.enum(['openai', 'azure', 'together', 'simulator']).optional(),
  ),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalUrl,
  AZURE_OPENAI_ENDPOINT: optionalUrl,
  AZURE_OPENAI_API_KEY: optionalString,
  AZURE_OPENAI_API_VERSION: z.string().min(1).default('2025-04-01-preview'),
  /**
   * Azure Resource Manager, for the deployments an Azure fine-tune needs before it serves anything
   * (activation creates one, deactivation deletes it): the subscription, resource group and Azure
   * OpenAI account (default: the first label of AZURE_OPENAI_ENDPOINT's host). The credential is a
   * service principal (AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET) or else a managed
   * identity (AZURE_CLIENT_ID picks a user-assigned one).
   */
  AZURE_SUBSCRIPTION_ID: optionalString,
  AZURE_RESOURCE_GROUP: optionalString,
  AZURE_OPENAI_ACCOUNT: optionalString,
  AZURE_TENANT_ID: optionalString,
  AZURE_CLIENT_ID: optionalString,
  AZURE_CLIENT_SECRET: optionalString,
  /** ARM's endpoint (default https://management.azure.com). */
  AZURE_MANAGEMENT_ENDPOINT: optionalUrl,
  /** The deployment's SKU and capacity (fine-tuned models: `Standard`, or `GlobalStandard`/`Developer` where offered). */
  AZURE_DEPLOYMENT_SKU: z.string().min(1).default('Standard'),
  AZURE_DEPLOYMENT_CAPACITY: z.coerce.number().int().min(1).default(1),
  TOGETHER_API_KEY: optionalString,
  /** Together's API base (default https://api.together.ai/v1, the SDK's; the simulator serves it at `/together/v1`). */
  TOGETHER_BASE_URL: optionalUrl,
  /** `whsec_...` secret the provider signs webhooks with. */
  PROVIDER_WEBHOOK_SECRET: optionalString,
  SIMULATOR_URL: z.url({ message: 'must be a URL' }).default('http://127.0.0.1:4010/v1'),
  SIMULATOR_API_KEY: z.string().min(1).default('sk-sim'),
  /** SDK retries for idempotent calls (job creation always runs with none). */
  PROVIDER_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
});

export type ProviderEnv = z.output<typeof providerEnvSchema>;
export type ProviderKind = 'openai' | 'azure' | 'together' | 'simulator';

export type ProviderSettings =
  | { kind: 'openai' | 'simulator'; apiKey: string; baseURL: string | undefined; common: CommonSettings }
  | { kind: 'azure'; apiKey: string; endpoint: string; apiVersion: string; common: CommonSettings }
  | { kind: 'together'; apiKey: string; baseURL: string | undefined; common: CommonSettings };

export interface CommonSettings {
  webhookSecret: string | undefined;
  maxRetries: number;
  timeoutMs: number;
}

/** Picks the provider and checks its credentials are all there (naming what is missing). */
export function resolveProviderSettings(env: ProviderEnv): ProviderSettings {
  const common: CommonSettings = {
    webhookSecret: env.PROVIDER_WEBHOOK_SECRET,
    maxRetries: env.PROVIDER_MAX_RETRIES,
    timeoutMs: env.PROVIDER_TIMEOUT_MS,
  };
  const kind: ProviderKind =
    env.PROVIDER ??
    (env.AZURE_OPENAI_ENDPOINT && env.AZURE_OPENAI_API_KEY
      ? 'azure'
      : env.OPENAI_API_KEY
        ? 'openai'
        : env.TOGETHER_API_KEY
          ? 'together'
          : 'simulator');
  if (kind === 'azure') {
    const missing = [
      !env.AZURE_OPENAI_ENDPOINT && 'AZURE_OPENAI_ENDPOINT',
      !env.AZURE_OPENAI_API_KEY && 'AZURE_OPENAI_API_KEY',
    ].filter(Boolean);
    if (missing.length)
      throw new ConfigError(`Invalid configuration: PROVIDER=azure needs ${missing.join(' and ')}`);
    return {
      kind,
      apiKey: env.AZURE_OPENAI_API_KEY!,
      endpoint: env.AZURE_OPENAI_ENDPOINT!,
      apiVersion: env.AZURE_OPENAI_API_VERSION,
      common,
    };
  }
  if (kind === 'openai') {
    if (!env.OPENAI_API_KEY)
      throw new ConfigError('Invalid configuration: PROVIDER=openai needs OPENAI_API_KEY');
    return { kind, apiKey: env.OPENAI_API_KEY, baseURL: env.OPENAI_BASE_URL, common };
  }
  if (kind === 'together') {
    if (!env.TOGETHER_API_KEY)
      throw new ConfigError('Invalid configuration: PROVIDER=together needs TOGETHER_API_KEY');
    return { kind, apiKey: env.TOGETHER_API_KEY, baseURL: env.TOGETHER_BASE_URL, common };
  }
  return { kind: 'simulator', apiKey: env.SIMULATOR_API_KEY, baseURL: env.SIMULATOR_URL, common };
}
