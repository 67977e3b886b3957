import { createProviderProfile, type ProviderProfile } from '@tuneline/provider';

/** The simulator profile every stage gets in these tests: the real SDK, over HTTP. */
export function makeProvider(opts: {
  baseURL: string;
  apiKey: string;
  webhookSecret?: string;
}): ProviderProfile {
  return createProviderProfile({
    kind: 'simulator',
    apiKey: opts.apiKey,
    baseURL: opts.baseURL,
    common: { webhookSecret: opts.webhookSecret, maxRetries: 2, timeoutMs: 10_000 },
  });
}
