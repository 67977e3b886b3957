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

function profileFor(settings: ProviderSettings, onRequest?: ProviderRequestObserver): ProviderProfile {
  if (settings.kind === 'together')
    return createTogetherProfile(settings, onRequest ? { fetch: observedFetch(onRequest) } : {});
  return createProviderProfile(settings, onRequest ? { onRequest } : {});
}

/**
 * Every provider the environment configures, plus the default (as `createProvider` picks it). With no
 * real credentials, the simulator serves all three dialects: openai at `SIMULATOR_URL`, azure at its
 * origin (`/openai/...`), together at `/together/v1`.
 */
export function createProviderSet(
  env: ProviderEnv,
  opts: { onRequest?: ProviderRequestObserver } = {},
): ProviderSet {
  const defaults = resolveProviderSettings(env);
  const common = defaults.common;
  const settings = new Map<NamedProvider, ProviderSettings>();
  if (defaults.kind === 'simulator') {
    const origin = new URL(env.SIMULATOR_URL).origin;
    const apiKey = env.SIMULATOR_API_KEY;
    settings.set('openai', { kind: 'simulator', apiKey, baseURL: env.SIMULATOR_URL, common });
    settings.set('azure', {
      kind: 'azure',
      apiKey,
      endpoint: origin,
      apiVersion: env.AZURE_OPENAI_API_VERSION,
      common,
    });
    settings.set('together', { kind: 'together', apiKey, baseURL: `${origin}/together/v1`, common });
  } else {
    const tryKind = (kind: NamedProvider) => {
      try {
        settings.set(kind, resolveProviderSettings({ ...env, PROVIDER: kind }));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    };
    for (const kind of NAMED_PROVIDERS) tryKind(kind);
  }
  const profiles = new Map<NamedProvider, ProviderProfile>();
  for (const [kind, s] of settings) profiles.set(kind, profileFor(s, opts.onRequest));
  const defaultKind: ProviderKind = defaults.kind;
  const defaultProfile =
    defaultKind === 'simulator'
      ? profileFor(defaults, opts.onRequest)
      : (profiles.get(defaultKind) ?? profileFor(defaults, opts.onRequest));
  return new ProviderSet(profiles, defaultProfile);
}
