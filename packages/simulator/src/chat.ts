// Chat completions: the request's checks and the answer, from the toy model of a base model or of a
// model the simulator fine-tuned, with token usage counted in the model's encoding.
import type { Clock } from './clock.ts';
import { ApiError, badRequest } from './errors.ts';
import type { FineTuningService } from './jobs.ts';
import { findBaseModel } from './models.ts';
import type { SeededRandom } from './random.ts';
import { countChatTokens, countTextTokens, type EncodingName } from './tokens.ts';
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
  if (body.stream === true)
    throw badRequest(
      'The simulator does not stream; call without `stream: true`.',
      'stream',
      'unsupported_value',
    );
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
  let answer = other
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
  let finishReason: 'stop' | 'length' = 'stop';
  let completionTokens = countTextTokens(answer, encoding);
  if (typeof maxTokensRaw === 'number' && maxTokensRaw > 0 && completionTokens > maxTokensRaw) {
    // Cut at the last whole word that fits.
    const words = answer.split(/(?<=\s)/);
    let cut = '';
    for (const w of words) {
      if (countTextTokens(cut + w, encoding) > maxTokensRaw) break;
      cut += w;
    }
    answer = cut;
    completionTokens = countTextTokens(answer, encoding);
    finishReason = 'length';
  }
  const n = typeof body.n === 'number' && body.n >= 1 ? Math.min(8, Math.floor(body.n)) : 1;
  const promptTokens = countChatTokens(messages, encoding);
  const created = Math.floor(clock.now() / 1000);
  return {
    id: completionIds.id('chatcmpl-', 29),
    object: 'chat.completion',
    created,
    model,
    choices: Array.from({ length: n }, (_, index) => ({
      index,
      message: { role: 'assistant', content: answer, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: finishReason,
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens * n,
      total_tokens: promptTokens + completionTokens * n,
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
}
