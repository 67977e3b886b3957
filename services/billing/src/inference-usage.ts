import { inferenceUsageMessage } from '@tuneline/contracts';
import { findPendingInferenceUsage, listUnappliedInferenceUsage } from '@tuneline/db';
import { settleCall } from '@tuneline/ledger';
import { defineStage, PermanentError } from '@tuneline/runtime';
import type { BillingDeps } from './handler.ts';

/**
 * Consumes `inference-usage`: a gateway call whose settlement failed after the provider answered
 * (the caller got its answer; the usage waits in inference_pending_usage). Applies it with the same
 * one-statement settlement as the gateway: the call's hold resolves exactly once, so a redelivered
 * message, two workers or a gateway retry that got through after all change nothing.
 */
export const inferenceUsageStage = defineStage<'inference-usage', BillingDeps>({
  queue: 'inference-usage',
  async handle(message, ctx, deps) {
    const usage = await findPendingInferenceUsage(deps.db, message.callId);
    if (!usage) throw new PermanentError(`no deferred usage for inference call ${message.callId}`);
    const result = await settleCall(deps.db, {
      callId: usage.callId,
      amount: usage.credits,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      ...(usage.response !== null ? { response: usage.response } : {}),
    });
    if (result.outcome === 'no_hold') {
      throw new PermanentError(`inference call ${message.callId} has no hold to settle`);
    }
    if (result.outcome === 'released') {
      // Only a call without an answer is released, and this one had an answer: say so loudly.
      ctx.log.error(
        { callId: message.callId },
        'deferred usage of a call whose hold was released: not charged',
      );
      return;
    }
    ctx.log.info(
      { callId: message.callId, outcome: result.outcome, charged: result.charged.toString() },
      result.outcome === 'settled' ? 'deferred inference usage applied' : 'inference usage already applied',
    );
  },
  /** Deferred usages not applied yet (their message may have been lost with Redis). */
  async recover(deps) {
    const ids = await listUnappliedInferenceUsage(deps.db);
    return ids.map((callId) => inferenceUsageMessage({ callId, correlationId: callId }));
  },
});
