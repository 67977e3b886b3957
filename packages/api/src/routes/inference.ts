import { findActiveFineTuneByModel } from '@tuneline/db';
import { getBalance } from '@tuneline/ledger';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { chatRequestSchema, invalidChatRequest, providerFailure } from '../gateway/request.ts';
import { streamChat } from '../gateway/stream.ts';
import { errorSchema, HttpError, type RouteTable } from '../http.ts';
import { inferenceCredits, inferencePrice } from '../pricing.ts';
import { chatCompletionSchema } from '../schemas.ts';
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
        402: { description: 'no credits available', schema: errorSchema },
        404: { description: 'no such active fine-tuned model for this license', schema: errorSchema },
        502: { description: 'the provider failed', schema: errorSchema },
        503: { description: 'no provider configured', schema: errorSchema },
      },
    },
    async ({ caller, body, request, reply }) => {
      const licenseId = licenseOf(caller);
      const fineTune = await findActiveFineTuneByModel(deps.db, licenseId, body.model);
      // Inactive, unknown and other licenses' models look the same: never confirm someone else's model.
      if (!fineTune)
        throw new HttpError(
          404,
          `model "${body.model}" not found among your active fine-tuned models`,
          undefined,
          {
            param: 'model',
            code: 'model_not_found',
          },
        );
      if (!deps.provider) throw new HttpError(503, 'no provider configured for inference');
      const balance = await getBalance(deps.db, licenseId);
      if (balance.available <= 0n || balance.overageBlocked) {
        throw new HttpError(402, `no credits available (available: ${balance.available})`);
      }
      // Metering seam: the provider's usage for this call (after the money work: settle the hold).
      const meter = (usage: { prompt_tokens: number; completion_tokens: number }) =>
        recordInferenceUsage(deps.db, {
          licenseId,
          fineTuneId: fineTune.id,
          model: body.model,
          promptTokens: usage.prompt_tokens,
          completionTokens: usage.completion_tokens,
          credits: inferenceCredits(
            inferencePrice(fineTune.baseModel),
            usage.prompt_tokens,
            usage.completion_tokens,
          ),
        }).then(() => undefined);
      const provider = deps.provider;
      if (body.stream === true) {
        await streamChat({ provider, body, request, reply, meter });
        return reply;
      }
      const completion = await provider.chatCompletion(body).catch((err: unknown) => {
        throw providerFailure(err);
      });
      if (completion.usage) await meter(completion.usage);
      return { ...completion, model: body.model };
    },
  );
}
