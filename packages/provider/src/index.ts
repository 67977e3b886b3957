import { ConfigError, formatZodError } from '@tuneline/contracts';
import { type ProviderEnv, providerEnvSchema, resolveProviderSettings } from './config.ts';
import { createProviderProfile, observedFetch, type ProviderRequestObserver } from './openai-profile.ts';
import type { ProviderProfile } from './profile.ts';
import { createTogetherProfile } from './together-profile.ts';

export { type ChatHttpClient, createChatHttpClient } from './chat-http.ts';
export * from './config.ts';
export * from './errors.ts';
export {
  createProviderProfile,
  OpenAIProviderProfile,
  type ProviderOperation,
  type ProviderRequestObserver,
  providerOperation,
} from './openai-profile.ts';
export * from './profile.ts';
export * from './together-profile.ts';

/** The provider for already-parsed settings (e.g. a service config extended with providerEnvSchema.shape). */
export function createProvider(
  env: ProviderEnv,
  opts: { onRequest?: ProviderRequestObserver } = {},
): ProviderProfile {
  const settings = resolveProviderSettings(env);
  if (settings.kind === 'together') {
    return createTogetherProfile(settings, opts.onRequest ? { fetch: observedFetch(opts.onRequest) } : {});
  }
  return createProviderProfile(settings, opts);
}

/** The provider chosen by the environment; the local simulator when no real credentials are set. */
export function createProviderFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderProfile {
  const parsed = providerEnvSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`Invalid configuration: ${formatZodError(parsed.error)}`);
  return createProvider(parsed.data);
}
export * from './azure-deployments.ts';
export * from './azure-management.ts';
export * from './job-statuses.ts';
export * from './provider-set.ts';
