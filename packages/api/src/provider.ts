import type {
  ChatCompletionBody,
  ChatCompletionChunk,
  ChatCompletionParams,
  ChatCompletionStreamParams,
  ChatHttpClient,
  ProviderProfile,
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
