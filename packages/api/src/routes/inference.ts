import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { chatProviderFor, idempotencyKeyOf, passingRateLimits, resolveModel } from '../gateway/call.ts';
import { holdWorstCase, rateLimitTokens, worstCase, worstUsage } from '../gateway/holds.ts';
import type { HeldCall } from '../gateway/metering.ts';
import { outcomeOf } from '../gateway/metrics.ts';
import { rateLimitedError } from '../gateway/rate-limit.ts';
import { chatRequestSchema, invalidChatRequest, providerFailure } from '../gateway/request.ts';
import { streamChat } from '../gateway/stream.ts';
import type { RouteTable } from '../http.ts';
import { routeGroup } from '../route-group.ts';
import { chatCompletionSchema } from '../schemas.ts';

export function registerInferenceRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'inference').add(
    {
      method: 'POST',
      url: '/v1/chat/completions',
      summary:
        "OpenAI-compatible chat completions on the caller's own active fine-tuned models. Rate limited per license (requests and tokens per minute); the call's worst case is held in credits before it is forwarded and the provider's reported usage charged after; an Idempotency-Key header makes a retry return the first answer, charged once",
      body: chatRequestSchema,
      invalidBody: invalidChatRequest,
      errors: 'openai',
      responses: {
        200: {
          description:
            'the completion as the provider returned it, `model` naming the fine-tuned model that answered (for an alias, the model it points at; header `x-tuneline-alias` names the alias); with `stream: true`, server-sent events of chat.completion.chunk objects ending with `data: [DONE]`',
          schema: chatCompletionSchema,
        },
        400: 'invalid request',
        402: "the call's worst case exceeds the available credits",
        404: 'no such active fine-tuned model or alias for this license',
        409: 'a call with this Idempotency-Key is still in progress',
        422: 'this Idempotency-Key was used with another request',
        429: 'rate limited: this license (Retry-After), or the provider (its headers passed through)',
        502: 'the provider failed',
        503: "no provider configured, or not the model's own provider (code `provider_not_configured`, naming it)",
      },
    },
    // authenticate (the route table) → resolve the model → rate limit → hold the worst case → forward
    // (or stream) → settle, or release the hold when no answer came.
    async ({ caller, body, request, reply }) => {
      const started = process.hrtime.bigint();
      let label = 'unknown';
      let failure: unknown;
      let providerNs = 0n;
      try {
        const licenseId = licenseOf(caller);
        const model = await resolveModel(deps, licenseId, body.model);
        label = model.baseModel;
        // An alias is served by the model it points at, a deployed model (Azure) by its deployment's
        // name: the provider gets that name, the answer names the fine-tuned model.
        const served = model.providerModel ?? model.model;
        const forwarded = body.model === served ? body : { ...body, model: served };
        if (model.alias) reply.header('x-tuneline-alias', model.alias);
        const real = chatProviderFor(deps, model.provider);
        const stream = body.stream === true;
        const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key'], stream);
        const cost = worstCase(body, model, deps.gateway.promptCount);
        const verdict = await deps.rateLimiter.take(licenseId, rateLimitTokens(cost));
        if (!verdict.ok) throw rateLimitedError(reply, verdict);
        const hold = await holdWorstCase(deps.holder, { licenseId, model, body, idempotencyKey, cost });
        if (hold.kind === 'replay') return hold.response;
        const call: HeldCall = { callId: hold.callId, model, keepResponse: idempotencyKey !== undefined };
        const provider = passingRateLimits(real, reply);

        if (stream) {
          try {
            const outcome = await streamChat({
              provider,
              body: { ...forwarded, stream: true },
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

        const sent = process.hrtime.bigint();
        let completion: Awaited<ReturnType<typeof provider.chatCompletion>>;
        try {
          completion = await provider.chatCompletion(forwarded);
        } catch (err) {
          await deps.meter.release(call);
          throw providerFailure(err);
        } finally {
          providerNs = process.hrtime.bigint() - sent;
        }
        const answer = { ...completion, model: model.model };
        // An answer without usage is charged its worst case (counted exactly): never nothing.
        const usage = completion.usage ?? worstUsage(body, model, hold.worstCase);
        if (!completion.usage)
          request.log.warn({ callId: call.callId }, 'provider answer without usage: charged its worst case');
        await deps.meter.settle(call, usage, answer);
        return answer;
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        const outcome = outcomeOf(failure);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        deps.metrics.requests.inc({ model: label, outcome });
        deps.metrics.latency.observe({ outcome }, seconds);
        if (outcome === 'ok' && providerNs > 0n)
          deps.metrics.overhead.observe(seconds - Number(providerNs) / 1e9);
      }
    },
  );
}
