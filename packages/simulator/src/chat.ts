// Chat completions: the request's checks and the answer, from the toy model of a base model or of a
// model the simulator fine-tuned, with token usage counted in the model's encoding.
import { type ChatParams, readChatParams } from './chat-params.ts';
import type { Clock } from './clock.ts';
import { ApiError, badRequest } from './errors.ts';
import type { FineTuningService } from './jobs.ts';
import { findBaseModel } from './models.ts';
import { derivedFloat, derivedId, type SeededRandom } from './random.ts';
import { valueForSchema } from './schema-value.ts';
import { countChatTokens, countTextTokens, type EncodingName, textTokens } from './tokens.ts';
import type { ChatTurn, FineTunedSource, ToyModels } from './toy-model.ts';

/** Another dialect's own model (Together): answered from its source, counted in its encoding. */
export interface ChatModelOverride {
  tuned?: { record: object; source: FineTunedSource };
  encoding: EncodingName;
}

function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && 'text' in p && typeof p.text === 'string' ? p.text : ''))
      .join('');
  }
  return '';
}

export function chatCompletion(
  service: FineTuningService,
  model: unknown,
  body: Record<string, unknown>,
  completionIds: SeededRandom,
  clock: Clock,
  toyModels: ToyModels,
  override?: ChatModelOverride,
) {
  if (typeof model !== 'string' || !model) throw badRequest("Missing required parameter: 'model'.", 'model');
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw badRequest("Invalid 'messages': expected a non-empty array.", 'messages', 'invalid_value');
  }
  const params = readChatParams(body);
  const messages: ChatTurn[] = [];
  for (const [i, m] of (body.messages as unknown[]).entries()) {
    if (!m || typeof m !== 'object' || typeof (m as { role?: unknown }).role !== 'string') {
      throw badRequest(
        `Invalid 'messages[${i}]': expected an object with a 'role'.`,
        `messages[${i}]`,
        'invalid_value',
      );
    }
    messages.push({
      role: (m as { role: string }).role,
      content: messageText((m as { content?: unknown }).content),
    });
  }
  const base = override ? undefined : findBaseModel(model);
  const tuned = base || override ? undefined : service.getFineTunedModel(model);
  if (!override && !base && !tuned) {
    throw new ApiError(
      404,
      `The model \`${model}\` does not exist or you do not have access to it.`,
      'invalid_request_error',
      null,
      'model_not_found',
    );
  }
  const encoding: EncodingName =
    override?.encoding ??
    base?.encoding ??
    service.state.jobs.get(tuned?.jobId ?? '')?.base.encoding ??
    'o200k_base';
  // A fine-tuned model is made from its job's training examples, seed and epochs (the API's job fields).
  const job = tuned ? service.state.jobs.get(tuned.jobId) : undefined;
  const epochs = job?.hyperparameters.n_epochs;
  const other = override?.tuned;
  const answer = other
    ? toyModels.fineTuned(other.record, () => other.source, messages)
    : tuned
      ? toyModels.fineTuned(
          tuned,
          () => ({
            examples: tuned.examples,
            seed: job?.seed ?? 0,
            epochs: typeof epochs === 'number' ? epochs : 1,
          }),
          messages,
        )
      : toyModels.base(messages);
  const maxTokensRaw = body.max_completion_tokens ?? body.max_tokens;
  const maxTokens = typeof maxTokensRaw === 'number' && maxTokensRaw > 0 ? maxTokensRaw : undefined;
  const id = completionIds.id('chatcmpl-', 29);
  const reply = shapeAnswer(answer, params, encoding, maxTokens, id);
  const promptTokens = countChatTokens(messages, encoding);
  const created = Math.floor(clock.now() / 1000);
  const completionTokens = reply.tokens * params.n;
  const completion = {
    id,
    object: 'chat.completion' as const,
    created,
    model,
    choices: Array.from({ length: params.n }, (_, index) => ({
      index,
      message: reply.message,
      logprobs: params.logprobs ? logprobsOf(reply.message.content ?? '', params, encoding) : null,
      finish_reason: reply.finishReason,
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_tunelinesim',
  };
  return { completion, params };
}

export type SimCompletion = ReturnType<typeof chatCompletion>['completion'];

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

interface ShapedAnswer {
  message: {
    role: 'assistant';
    content: string | null;
    refusal: null;
    annotations: [];
    tool_calls?: ToolCall[];
  };
  finishReason: 'stop' | 'length' | 'tool_calls';
  tokens: number;
}

function parsedOrText(answer: string): unknown {
  try {
    return JSON.parse(answer);
  } catch {
    return answer;
  }
}

/** The toy model's answer as the request asked for it: a tool call, JSON in a schema, cut by stop and length. */
function shapeAnswer(
  answer: string,
  params: ChatParams,
  encoding: EncodingName,
  maxTokens: number | undefined,
  id: string,
): ShapedAnswer {
  const base = { role: 'assistant' as const, refusal: null, annotations: [] as [] };
  if (params.toolToCall) {
    const tool = params.toolToCall;
    const args = JSON.stringify(valueForSchema(tool.parameters, parsedOrText(answer)));
    return {
      message: {
        ...base,
        content: null,
        tool_calls: [
          {
            id: derivedId('call_', [id, tool.name], 24),
            type: 'function',
            function: { name: tool.name, arguments: args },
          },
        ],
      },
      finishReason: params.toolForced ? 'stop' : 'tool_calls',
      tokens: countTextTokens(tool.name, encoding) + countTextTokens(args, encoding),
    };
  }
  let text = answer;
  if (params.format.type === 'json_schema')
    text = JSON.stringify(valueForSchema(params.format.schema, parsedOrText(answer)));
  else if (params.format.type === 'json_object') {
    const parsed = parsedOrText(answer);
    text =
      parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? JSON.stringify(parsed)
        : JSON.stringify({ answer });
  }
  let finishReason: ShapedAnswer['finishReason'] = 'stop';
  // Generation ends before the first stop sequence; it is not part of the answer.
  let cutAt = text.length;
  for (const stop of params.stop) {
    const at = stop ? text.indexOf(stop) : -1;
    if (at >= 0 && at < cutAt) cutAt = at;
  }
  text = text.slice(0, cutAt);
  let tokens = countTextTokens(text, encoding);
  if (maxTokens !== undefined && tokens > maxTokens) {
    // Generation stops after `maxTokens` tokens, like the real thing: mid-word, mid-JSON.
    text = textTokens(text, encoding).slice(0, maxTokens).join('');
    tokens = maxTokens;
    finishReason = 'length';
  }
  return { message: { ...base, content: text }, finishReason, tokens };
}

/** Deterministic log probabilities per token of the answer, with `top_logprobs` alternatives. */
export function logprobsOf(content: string, params: ChatParams, encoding: EncodingName) {
  const entry = (token: string, logprob: number) => ({
    token,
    logprob,
    bytes: [...Buffer.from(token, 'utf8')],
  });
  return {
    content: textTokens(content, encoding).map((token, i) => {
      const logprob = -Math.round(derivedFloat([params.seed ?? 0, i, token]) * 2000) / 1000;
      return {
        ...entry(token, logprob),
        top_logprobs: Array.from({ length: params.topLogprobs }, (_, k) =>
          k === 0 ? entry(token, logprob) : entry(`${token.trim() || '_'}${k}`, logprob - k),
        ),
      };
    }),
    refusal: null,
  };
}
