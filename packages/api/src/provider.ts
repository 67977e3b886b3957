import { ProviderError, type ProviderProfile } from '@tuneline/provider';

/** What the API needs from the provider: one OpenAI-shaped chat completion. */
export interface ChatCompletionResult {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: unknown[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ChatProvider {
  chatCompletion(body: ChatRequest): Promise<ChatCompletionResult>;
}

export interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content?: unknown }>;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  temperature?: unknown;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function text(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof p.text === 'string' ? p.text : ''))
      .join('');
  }
  return '';
}

/**
 * The provider profile (@tuneline/provider: openai, azure or the simulator, chosen by the environment)
 * as the API's chat provider: the OpenAI request is narrowed to what the profile takes and its answer
 * shaped back into an OpenAI `chat.completion`.
 */
export function profileChatProvider(profile: Pick<ProviderProfile, 'chatCompletion'>): ChatProvider {
  return {
    async chatCompletion(body) {
      const messages = body.messages.map((m, i) => {
        if (!ROLES.has(m.role))
          throw new ProviderError('rejected', `messages[${i}].role: unsupported role "${m.role}"`, {
            status: 400,
          });
        return { role: m.role as 'system' | 'developer' | 'user' | 'assistant', content: text(m.content) };
      });
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      const res = await profile.chatCompletion({
        model: body.model,
        messages,
        ...(typeof maxTokens === 'number' ? { maxTokens } : {}),
        ...(typeof body.temperature === 'number' ? { temperature: body.temperature } : {}),
      });
      return {
        id: res.id,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: res.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: res.content },
            finish_reason: res.finishReason,
            logprobs: null,
          },
        ],
        usage: {
          prompt_tokens: res.usage.promptTokens,
          completion_tokens: res.usage.completionTokens,
          total_tokens: res.usage.totalTokens,
        },
      };
    },
  };
}
