import { findActiveFineTuneByModel } from '@tuneline/db';
import { getBalance } from '@tuneline/ledger';
import { ProviderError } from '@tuneline/provider';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, HttpError, type RouteTable } from '../http.ts';
import { inferenceCredits, inferencePrice } from '../pricing.ts';
import { chatCompletionRequestSchema, chatCompletionSchema } from '../schemas.ts';
import { recordInferenceUsage } from '../usage.ts';

export function registerInferenceRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'POST',
      url: '/v1/chat/completions',
      auth: 'license',
      tag: 'inference',
      summary:
        "OpenAI-compatible chat completions on the caller's own active fine-tuned models; usage is metered in credits",
      body: chatCompletionRequestSchema,
      responses: {
        200: { description: 'the completion, as the provider returned it', schema: chatCompletionSchema },
        400: { description: 'invalid request', schema: errorSchema },
        401: { description: 'missing or invalid API key', schema: errorSchema },
        402: { description: 'no credits available', schema: errorSchema },
        404: { description: 'no such active fine-tuned model for this license', schema: errorSchema },
        502: { description: 'the provider failed', schema: errorSchema },
        503: { description: 'no provider configured', schema: errorSchema },
      },
    },
    async ({ caller, body }) => {
      const licenseId = licenseOf(caller);
      const fineTune = await findActiveFineTuneByModel(deps.db, licenseId, body.model);
      // Inactive, unknown and other licenses' models look the same: never confirm someone else's model.
      if (!fineTune)
        throw new HttpError(404, `model "${body.model}" not found among your active fine-tuned models`);
      if (!deps.provider) throw new HttpError(503, 'no provider configured for inference');
      const balance = await getBalance(deps.db, licenseId);
      if (balance.available <= 0n || balance.overageBlocked) {
        throw new HttpError(402, `no credits available (available: ${balance.available})`);
      }
      let completion: Awaited<ReturnType<NonNullable<ApiDeps['provider']>['chatCompletion']>>;
      try {
        completion = await deps.provider.chatCompletion(body);
      } catch (err) {
        if (err instanceof ProviderError && err.status !== undefined) {
          // The caller's own mistakes (bad parameters) pass through; the provider's come back as 502.
          if (err.kind === 'rejected' && (err.status === 400 || err.status === 422))
            throw new HttpError(400, `provider: ${err.message}`);
          if (err.kind === 'rate_limited')
            throw new HttpError(429, `provider is rate limiting: ${err.message}`);
          throw new HttpError(502, `provider answered ${err.status}: ${err.message}`);
        }
        // No answer at all: the ProviderError already says "provider unreachable: …".
        if (err instanceof ProviderError) throw new HttpError(502, err.message);
        throw new HttpError(502, `provider unreachable: ${(err as Error).message}`);
      }
      const promptTokens = completion.usage.prompt_tokens;
      const completionTokens = completion.usage.completion_tokens;
      const credits = inferenceCredits(inferencePrice(fineTune.baseModel), promptTokens, completionTokens);
      await recordInferenceUsage(deps.db, {
        licenseId,
        fineTuneId: fineTune.id,
        model: body.model,
        promptTokens,
        completionTokens,
        credits,
      });
      return completion;
    },
  );
}
