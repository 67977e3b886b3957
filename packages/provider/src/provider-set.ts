// Several providers at once: one profile per provider whose credentials the environment gives, so a
// license (or a single request) can name its provider. Rows that name none use the deployment default.
import { ConfigError } from '@tuneline/contracts';
import {
  type ProviderEnv,
  type ProviderKind,
  type ProviderSettings,
  resolveProviderSettings,
} from './config.ts';
import { createProviderProfile, observedFetch, type ProviderRequestObserver } from './openai-profile.ts';
import type { ProviderProfile } from './profile.ts';
import { createTogetherProfile } from './together-profile.ts';

/** The providers a license or request can name. */
export const NAMED_PROVIDERS = ['openai', 'azure', 'together'] as const;
export type NamedProvider = (typeof NAMED_PROVIDERS)[number];

const HOW_TO_CONFIGURE: Record<NamedProvider, string> = {
  openai: 'OPENAI_API_KEY',
  azure: 'AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY',
  together: 'TOGETHER_API_KEY',
};

/** A row names a provider this deployment has no credentials for. */
export class ProviderNotConfiguredError extends Error {
  override name = 'ProviderNotConfiguredError';
  constructor(readonly provider: string) {
    super(
      (NAMED_PROVIDERS as readonly string[]).includes(provider)
        ? `provider "${provider}" is not configured in this deployment (set ${HOW_TO_CONFIGURE[provider as NamedProvider]})`
        : `unknown provider "${provider}" (known: ${NAMED_PROVIDERS.join(', ')})`,
    );
  }
}

export class ProviderSet {
  constructor(
    private readonly profiles: ReadonlyMap<NamedProvider, ProviderProfile>,
    readonly defaultProfile: ProviderProfile,
  ) {}

  /** The profile for a row's provider; null or undefined means the deployment default. */
  for(provider: string | null | undefined): ProviderProfile {
    if (provider === null || provider === undefined) return this.defaultProfile;
    const profile = this.profiles.get(provider as NamedProvider);
    if (!profile) throw new ProviderNotConfiguredError(provider);
    return profile;
  }

  has(provider: string): boolean {
    return this.profiles.has(provider as NamedProvider);
  }

  /** Named providers this deployment can reach. */
  configured(): NamedProvider[] {
    return [...this.profiles.keys()];
  }
}

/** The profile for one provider's settings (Together's own client, else the openai package's). */
export function profileFromSettings(
  settings: ProviderSettings,
  onRequest?: ProviderRequestObserver,
): ProviderProfile {
  if (settings.kind === 'together')
    return createTogetherProfile(settings, onRequest ? { fetch: observedFetch(onRequest) } : {});
  return createProviderProfile(settings, onRequest ? { onRequest } : {});
}

/** The settings of every provider the environment configures, and of the default. */
export interface ProviderSettingsSet {
  /** The default (as `createProvider` picks it; `simulator` when no real credentials are set). */
  defaults: ProviderSettings;
  named: Map<NamedProvider, ProviderSettings>;
}

/**
 * Every provider the environment configures, by name. With no real credentials, the simulator serves
 * all three dialects: openai at `SIMULATOR_URL`, azure at its origin (`/openai/...`), together at
 * `/together/v1`.
 */
export function resolveProviderSettingsSet(env: ProviderEnv): ProviderSettingsSet {
  const defaults = resolveProviderSettings(env);
  const common = defaults.common;
  const named = new Map<NamedProvider, ProviderSettings>();
  if (defaults.kind === 'simulator') {
    const origin = new URL(env.SIMULATOR_URL).origin;
    const apiKey = env.SIMULATOR_API_KEY;
    named.set('openai', { kind: 'simulator', apiKey, baseURL: env.SIMULATOR_URL, common });
    named.set('azure', {
      kind: 'azure',
      apiKey,
      endpoint: origin,
      apiVersion: env.AZURE_OPENAI_API_VERSION,
      common,
    });
    named.set('together', { kind: 'together', apiKey, baseURL: `${origin}/together/v1`, common });
  } else {
    for (const kind of NAMED_PROVIDERS) {
      try {
        named.set(kind, resolveProviderSettings({ ...env, PROVIDER: kind }));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }
  }
  return { defaults, named };
}

/** A profile for every provider the environment configures (resolveProviderSettingsSet), plus the default. */
export function createProviderSet(
  env: ProviderEnv,
  opts: { onRequest?: ProviderRequestObserver } = {},
): ProviderSet {
  const { defaults, named } = resolveProviderSettingsSet(env);
  const profiles = new Map<NamedProvider, ProviderProfile>();
  for (const [kind, s] of named) profiles.set(kind, profileFromSettings(s, opts.onRequest));
  const defaultKind: ProviderKind = defaults.kind;
  const defaultProfile =
    defaultKind === 'simulator'
      ? profileFromSettings(defaults, opts.onRequest)
      : (profiles.get(defaultKind) ?? profileFromSettings(defaults, opts.onRequest));
  return new ProviderSet(profiles, defaultProfile);
}
