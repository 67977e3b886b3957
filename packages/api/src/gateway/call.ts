import { findBaseModel, shutDown, shutdownMessage } from '@tuneline/dataset';
import { ProviderNotConfiguredError } from '@tuneline/provider';
import type { FastifyReply } from 'fastify';
import type { ApiDeps } from '../app.ts';
import { HttpError } from '../http.ts';
import { inferenceTerms } from '../pricing.ts';
import type { ChatProvider } from '../provider.ts';
import type { CallModel } from './holds.ts';
import { passProviderRateLimit } from './rate-limit.ts';

// The steps of a gateway call that routes/inference.ts strings together, apart from holds, metering
// and rate limits (their own modules).

/**
 * The caller's own active fine-tuned model, named directly or by one of the license's aliases (one
 * statement, cached for a second: gateway/cache.ts), with what holding and metering a call on it needs.
 */
export async function resolveModel(deps: ApiDeps, licenseId: string, model: string): Promise<CallModel> {
  const fineTune = await deps.caches.fineTune(licenseId, model);
  // Inactive, unknown and other licenses' models look the same: never confirm someone else's model.
  if (!fineTune)
    throw new HttpError(404, `model "${model}" not found among your active fine-tuned models`, undefined, {
      param: 'model',
      code: 'model_not_found',
    });
  const base = findBaseModel(fineTune.baseModel, deps.catalogue);
  // Past its base model's shutdownAt at the provider that serves it (the one clock), the model serves
  // nothing: 410, naming the successor. Another provider's dates do not apply.
  if (base && shutDown(base, fineTune.provider, deps.clock.now()))
    throw new HttpError(
      410,
      shutdownMessage(base, fineTune.provider, fineTune.fineTunedModel ?? model),
      undefined,
      {
        param: 'model',
        code: 'model_shut_down',
      },
    );
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
    model: fineTune.fineTunedModel ?? model,
    provider: fineTune.provider,
    // Azure's inference takes the deployment's name as the model (issue 20.1).
    ...(fineTune.deploymentName ? { providerModel: fineTune.deploymentName } : {}),
    alias: fineTune.viaAlias,
    baseModel: fineTune.baseModel,
    encoding: base?.encoding ?? 'o200k_base',
    maxOutputTokens: terms.maxOutputTokens,
    price: terms.price,
  };
}

export function idempotencyKeyOf(header: string | string[] | undefined, stream: boolean): string | undefined {
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) return undefined;
  const bad = (message: string) =>
    new HttpError(400, message, undefined, { param: null, code: 'invalid_idempotency_key' });
  if (key.length === 0 || key.length > 255) throw bad('Idempotency-Key must be 1-255 characters');
  // A streamed answer is not kept, so it could not be replayed: refuse rather than charge twice.
  if (stream) throw bad('Idempotency-Key is not supported with stream: true');
  return key;
}

/**
 * The chat provider serving a model: its fine-tune's own (a Map look-up), the default for one naming
 * none. A provider this API has no credentials for is a 503 naming it and the variables to set.
 */
export function chatProviderFor(deps: ApiDeps, provider: string | null | undefined): ChatProvider {
  const routed = provider != null && deps.chatProviders !== undefined;
  const chosen = routed ? deps.chatProviders?.get(provider) : deps.provider;
  if (chosen) return chosen;
  if (!routed) throw new HttpError(503, 'no provider configured for inference');
  throw new HttpError(503, new ProviderNotConfiguredError(String(provider)).message, undefined, {
    param: 'model',
    code: 'provider_not_configured',
  });
}

/** The provider, with its own 429s' rate-limit headers copied onto the caller's reply. */
export function passingRateLimits(real: ChatProvider, reply: FastifyReply): ChatProvider {
  return {
    chatCompletion: (b, o) =>
      real.chatCompletion(b, o).catch((err: unknown) => {
        passProviderRateLimit(reply, err);
        throw err;
      }),
    streamChatCompletion: (b, o) =>
      real.streamChatCompletion(b, o).catch((err: unknown) => {
        passProviderRateLimit(reply, err);
        throw err;
      }),
  };
}
