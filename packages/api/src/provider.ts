import {
  type ChatCompletionBody,
  type ChatCompletionChunk,
  type ChatCompletionParams,
  type ChatCompletionStreamParams,
  type ChatHttpClient,
  createChatHttpClient,
  type ProviderEnv,
  type ProviderProfile,
  type ProviderSettings,
  profileFromSettings,
  resolveProviderSettingsSet,
} from '@tuneline/provider';
import type { ChatRequestBody } from './gateway/request.ts';

export type { ChatCompletionBody, ChatCompletionChunk };

/** What the gateway needs from the provider: OpenAI's chat completions, whole and streamed. */
export interface ChatProvider {
  /** The request as the caller sent it (validated); the provider's answer as it came. */
  chatCompletion(body: ChatRequestBody, opts?: { signal?: AbortSignal }): Promise<ChatCompletionBody>;
  /** Resolves once the provider accepted the stream (its refusals reject here), then yields its chunks. */
  streamChatCompletion(
    body: ChatRequestBody & { stream: true },
    opts?: { signal?: AbortSignal },
  ): Promise<AsyncIterable<ChatCompletionChunk>>;
}

/**
 * The provider profile (@tuneline/provider: openai, azure or the simulator, chosen by the environment)
 * as the gateway's chat provider. The body passes through unchanged: the gateway's schema
 * (gateway/request.ts) already holds it to what the provider's chat models accept.
 */
export function profileChatProvider(
  profile: Pick<ProviderProfile, 'createChatCompletion' | 'streamChatCompletion'>,
  /** Non-streamed calls over a keep-alive pool instead of the SDK (the API passes one). */
  http?: Pick<ChatHttpClient, 'createChatCompletion'>,
): ChatProvider {
  const whole = http ?? profile;
  return {
    chatCompletion: (body, opts) =>
      whole.createChatCompletion(body as unknown as ChatCompletionParams, opts ?? {}),
    streamChatCompletion: (body, opts) =>
      profile.streamChatCompletion(body as unknown as ChatCompletionStreamParams, opts ?? {}),
  };
}

/** The gateway's chat providers: the deployment default and one per provider the environment configures. */
export interface ChatProviders {
  /** For fine-tunes that name no provider. */
  provider: ChatProvider;
  /** By provider name (`openai`, `azure`, `together`): fine-tunes that name one are served there. */
  chatProviders: ReadonlyMap<string, ChatProvider>;
  /** Closes every connection pool. */
  close(): void;
}

/**
 * Built once at start-up, from the workers' provider variables (resolveProviderSettingsSet): per
 * provider a profile (streamed calls) and a keep-alive pool (whole calls). A call only looks its
 * provider up in the map.
 */
export function createChatProviders(env: ProviderEnv): ChatProviders {
  const { defaults, named } = resolveProviderSettingsSet(env);
  const pools: ChatHttpClient[] = [];
  const build = (settings: ProviderSettings): ChatProvider => {
    const pool = createChatHttpClient(settings);
    pools.push(pool);
    return profileChatProvider(profileFromSettings(settings), pool);
  };
  const chatProviders = new Map<string, ChatProvider>();
  for (const [name, settings] of named) chatProviders.set(name, build(settings));
  const provider = chatProviders.get(defaults.kind) ?? build(defaults);
  return {
    provider,
    chatProviders,
    close() {
      for (const pool of pools) pool.close();
    },
  };
}
