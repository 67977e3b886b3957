import type { Db } from '@tuneline/db';
import { settleCall } from '@tuneline/ledger';
import type { FastifyBaseLogger } from 'fastify';
import { inferenceCredits } from '../pricing.ts';
import type { CallModel } from './holds.ts';
import { releaseHold } from './holds.ts';

/** What the provider reported for a call (OpenAI's `usage` names). */
export interface CallUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** A call whose worst case is held: what settling it needs. */
export interface HeldCall {
  callId: string;
  model: CallModel;
  /** Keep the answer for an Idempotency-Key replay. */
  keepResponse: boolean;
}

/**
 * Step "settle" of a gateway call: posts the provider's reported usage against the call's hold and
 * releases the rest (one statement, exactly once per call). Never throws: once the provider answered,
 * the caller gets the answer whatever happens to the metering write.
 *
 * Streaming (or any other path) settles with `meter.settle(call, usage)` once it has the final usage,
 * and gives the hold back with `meter.release(call)` when no answer came.
 */
export class GatewayMeter {
  constructor(
    private readonly db: Db,
    private readonly log?: FastifyBaseLogger,
  ) {}

  /** The credits a usage costs at the call's prices. */
  credits(call: HeldCall, usage: CallUsage): bigint {
    return inferenceCredits(call.model.price, usage.prompt_tokens, usage.completion_tokens);
  }

  async settle(call: HeldCall, usage: CallUsage, response?: unknown): Promise<{ credits: bigint }> {
    const credits = this.credits(call, usage);
    try {
      await settleCall(this.db, {
        callId: call.callId,
        amount: credits,
        promptTokens: usage.prompt_tokens,
        completionTokens: usage.completion_tokens,
        ...(call.keepResponse && response !== undefined ? { response } : {}),
      });
    } catch (err) {
      this.log?.error({ err, callId: call.callId }, 'inference metering failed');
    }
    return { credits };
  }

  async release(call: HeldCall): Promise<void> {
    try {
      await releaseHold(this.db, call.callId);
    } catch (err) {
      this.log?.error({ err, callId: call.callId }, 'inference hold release failed');
    }
  }
}
