import { findActiveFineTuneByModel } from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { type CallModel, holdWorstCase } from '../gateway/holds.ts';
import type { HeldCall } from '../gateway/metering.ts';
import { chatRequestSchema, invalidChatRequest, providerFailure } from '../gateway/request.ts';
import { streamChat } from '../gateway/stream.ts';
import { errorSchema, HttpError, type RouteTable } from '../http.ts';
import { inferenceTerms } from '../pricing.ts';
import { chatCompletionSchema } from '../schemas.ts';

/** The caller's own active fine-tuned model, with what holding and metering a call on it needs. */
async function resolveModel(deps: ApiDeps, licenseId: string, model: string): Promise<CallModel> {
  const fineTune = await findActiveFineTuneByModel(deps.db, licenseId, model);
  // Inactive, unknown and other licenses' models look the same: never confirm someone else's model.
  if (!fineTune)
    throw new HttpError(404, `model "${model}" not found among your active fine-tuned models`, undefined, {
      param: 'model',
      code: 'model_not_found',
    });
  const base = deps.catalogue[fineTune.baseModel];
  const terms = inferenceTerms(deps.catalogue, fineTune.baseModel);
  if (!terms.known) {
    deps.metrics.unpricedModel.inc({ model: fineTune.baseModel });
    deps.log.warn(
      { baseModel: fineTune.baseModel, fineTuneId: fineTune.id, price: terms.price },
      'no inference price in the model catalogue for this base model: charging the fallback (most expensive) price',
    );
  }
  return {
    fineTuneId: fineTune.id,
    model,
    baseModel: fineTune.baseModel,
    encoding: base?.encoding ?? 'o200k_base',
    maxOutputTokens: terms.maxOutputTokens,
    price: terms.price,
  };
}

function idempotencyKeyOf(header: string | string[] | undefined, stream: boolean): string | undefined {
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  const bad = (message: string) =>
    new HttpError(400, message, undefined, { param: null, code: 'invalid_idempotency_key' });
  if (key.length === 0 || key.length > 255) throw bad('Idempotency-Key must be 1-255 characters');
  // A streamed answer is not kept, so it could not be replayed: refuse rather than charge twice.
  if (stream) throw bad('Idempotency-Key is not supported with stream: true');
  return key;
}

export function registerInferenceRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'POST',
      url: '/v1/chat/completions',
      auth: 'license',
      tag: 'inference',
      summary:
        "OpenAI-compatible chat completions on the caller's own active fine-tuned models. The call's worst case is held in credits before it is forwarded and the provider's reported usage charged after; an Idempotency-Key header makes a retry return the first answer, charged once",
      body: chatRequestSchema,
      invalidBody: invalidChatRequest,
      errors: 'openai',
      responses: {
        200: {
          description:
            'the completion as the provider returned it (with the model name the caller used); with `stream: true`, server-sent events of chat.completion.chunk objects ending with `data: [DONE]`',
          schema: chatCompletionSchema,
        },
        400: { description: 'invalid request', schema: errorSchema },
        401: { description: 'missing or invalid API key', schema: errorSchema },
        402: { description: "the call's worst case exceeds the available credits", schema: errorSchema },
        404: { description: 'no such active fine-tuned model for this license', schema: errorSchema },
        409: { description: 'a call with this Idempotency-Key is still in progress', schema: errorSchema },
        422: { description: 'this Idempotency-Key was used with another request', schema: errorSchema },
        429: { description: 'rate limited (this license, or the provider)', schema: errorSchema },
        502: { description: 'the provider failed', schema: errorSchema },
        503: { description: 'no provider configured', schema: errorSchema },
      },
    },
    // authenticate (the route table) → resolve the model → hold the worst case → forward → settle.
    async ({ caller, body, request, reply }) => {
      const licenseId = licenseOf(caller);
      const model = await resolveModel(deps, licenseId, body.model);
      const provider = deps.provider;
      if (!provider) throw new HttpError(503, 'no provider configured for inference');
      const stream = body.stream === true;
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key'], stream);
      const hold = await holdWorstCase(deps.db, { licenseId, model, body, idempotencyKey });
      if (hold.kind === 'replay') return hold.response;
      const call: HeldCall = { callId: hold.callId, model, keepResponse: idempotencyKey !== undefined };

      if (stream) {
        try {
          const outcome = await streamChat({
            provider,
            body: { ...body, stream: true },
            request,
            reply,
            meter: (usage) => deps.meter.settle(call, usage).then(() => undefined),
          });
          // No usage chunk (the provider's stream broke first): nothing to charge, give the hold back.
          if (!outcome.usage) await deps.meter.release(call);
        } catch (err) {
          await deps.meter.release(call);
          throw err;
        }
        return reply;
      }

      let completion: Awaited<ReturnType<typeof provider.chatCompletion>>;
      try {
        completion = await provider.chatCompletion(body);
      } catch (err) {
        await deps.meter.release(call);
        throw providerFailure(err);
      }
      const answer = { ...completion, model: body.model };
      // An answer without usage is charged its worst case (what was held): never nothing.
      const usage = completion.usage ?? {
        prompt_tokens: hold.worstCase.promptTokens,
        completion_tokens: hold.worstCase.completionTokens,
      };
      if (!completion.usage)
        request.log.warn({ callId: call.callId }, 'provider answer without usage: charged the hold');
      await deps.meter.settle(call, usage, answer);
      return answer;
    },
  );
}
