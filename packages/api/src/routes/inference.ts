import { findActiveFineTuneByModel } from '@tuneline/db';
import { ProviderError } from '@tuneline/provider';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { type CallModel, holdWorstCase } from '../gateway/holds.ts';
import type { HeldCall } from '../gateway/metering.ts';
import { errorSchema, HttpError, type RouteTable } from '../http.ts';
import { inferenceTerms } from '../pricing.ts';
import { chatCompletionRequestSchema, chatCompletionSchema } from '../schemas.ts';

/** The caller's own active fine-tuned model, with what holding and metering a call on it needs. */
async function resolveModel(deps: ApiDeps, licenseId: string, model: string): Promise<CallModel> {
  const fineTune = await findActiveFineTuneByModel(deps.db, licenseId, model);
  // Inactive, unknown and other licenses' models look the same: never confirm someone else's model.
  if (!fineTune) throw new HttpError(404, `model "${model}" not found among your active fine-tuned models`);
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

function providerHttpError(err: unknown): HttpError {
  if (err instanceof ProviderError && err.status !== undefined) {
    // The caller's own mistakes (bad parameters) pass through; the provider's come back as 502.
    if (err.kind === 'rejected' && (err.status === 400 || err.status === 422))
      return new HttpError(400, `provider: ${err.message}`);
    if (err.kind === 'rate_limited') return new HttpError(429, `provider is rate limiting: ${err.message}`);
    return new HttpError(502, `provider answered ${err.status}: ${err.message}`);
  }
  // No answer at all: the ProviderError already says "provider unreachable: …".
  if (err instanceof ProviderError) return new HttpError(502, err.message);
  return new HttpError(502, `provider unreachable: ${(err as Error).message}`);
}

function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255)
    throw new HttpError(400, 'Idempotency-Key must be 1-255 characters');
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
        "OpenAI-compatible chat completions on the caller's own active fine-tuned models. The call's worst case is held in credits before it is forwarded; the provider's reported usage is charged after. An Idempotency-Key header makes a retry return the first answer, charged once",
      body: chatCompletionRequestSchema,
      responses: {
        200: { description: 'the completion, as the provider returned it', schema: chatCompletionSchema },
        400: { description: 'invalid request', schema: errorSchema },
        401: { description: 'missing or invalid API key', schema: errorSchema },
        402: { description: "the call's worst case exceeds the available credits", schema: errorSchema },
        404: { description: 'no such active fine-tuned model for this license', schema: errorSchema },
        409: { description: 'a call with this Idempotency-Key is still in progress', schema: errorSchema },
        422: { description: 'this Idempotency-Key was used with another request', schema: errorSchema },
        502: { description: 'the provider failed', schema: errorSchema },
        503: { description: 'no provider configured', schema: errorSchema },
      },
    },
    async ({ caller, body, request }) => {
      // authenticate → resolve the model → hold the worst case → forward → settle (or release).
      const licenseId = licenseOf(caller);
      const model = await resolveModel(deps, licenseId, body.model);
      if (!deps.provider) throw new HttpError(503, 'no provider configured for inference');
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
      const hold = await holdWorstCase(deps.db, { licenseId, model, body, idempotencyKey });
      if (hold.kind === 'replay') return hold.response;
      const call: HeldCall = { callId: hold.callId, model, keepResponse: idempotencyKey !== undefined };
      let completion: Awaited<ReturnType<NonNullable<ApiDeps['provider']>['chatCompletion']>>;
      try {
        completion = await deps.provider.chatCompletion(body);
      } catch (err) {
        await deps.meter.release(call);
        throw providerHttpError(err);
      }
      await deps.meter.settle(call, completion.usage, completion);
      return completion;
    },
  );
}
