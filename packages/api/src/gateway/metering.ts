import { type Db, deferInferenceUsage } from '@tuneline/db';
import { type SettleInput, type SettleResult, settleCall, settleCalls } from '@tuneline/ledger';
import type { FastifyBaseLogger } from 'fastify';
import { inferenceCredits } from '../pricing.ts';
import { GroupCommit } from './group-commit.ts';
import type { CallModel } from './holds.ts';
import { releaseHold } from './holds.ts';
import type { ApiMetrics } from './metrics.ts';

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

/** How often the last-resort retries (nothing could be written at all) run. */
const RETRY_MS = 1_000;
/** Most settlements written in one statement. */
const MAX_GROUP = 128;

/**
 * Step "settle" of a gateway call (issue 19.4: metering that loses nothing). Once the provider has
 * answered, the caller gets the answer whatever happens here, and the usage is applied exactly once:
 *
 * 1. `settleCall` posts the usage against the call's hold and releases the rest (one statement);
 *    settlements that arrive while one is being written go together (`settleCalls`, group commit:
 *    group-commit.ts), and a group that fails is settled one by one.
 * 2. If that fails, the usage is written to `inference_pending_usage` with an `inference-usage` outbox
 *    message in one transaction, and the outbox is flushed; billing applies it with the same settlement.
 * 3. If even that fails (Postgres unreachable), the usage stays in this process and both are retried
 *    every second until one succeeds. (Lost only if the process dies first; the hold then stays
 *    pending, visible in the ledger, and the worst case stays reserved.)
 *
 * Exactly once holds whatever path runs, and however often: a hold resolves once (`usage-<callId>`
 * and the one-resolution index), and a repeated settle is a no-op.
 *
 * Streaming (or any other path) settles with `meter.settle(call, usage)` once it has the final usage,
 * and gives the hold back with `meter.release(call)` when no answer came at all.
 */
export class GatewayMeter {
  private readonly waiting = new Map<string, SettleInput>();
  /** Settlements that arrive together go in one statement (`settleCalls`); a failed group, one by one. */
  private readonly group: GroupCommit<SettleInput, void>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log?: FastifyBaseLogger,
    private readonly metrics?: ApiMetrics,
    /** Publishes committed outbox rows now (the API's relay). */
    private readonly flushOutbox?: () => Promise<void>,
  ) {
    this.group = new GroupCommit<SettleInput, void>({
      maxGroup: MAX_GROUP,
      many: async (inputs) => {
        const results = await settleCalls(this.db, inputs);
        for (const [callId, result] of results) this.check(callId, result);
        return inputs.map(() => undefined);
      },
      one: (input) => this.settleOne(input),
      onGroup: (size) => this.metrics?.settleGroup.observe(size),
      onGroupFailed: (err, calls) =>
        this.log?.warn({ err, calls }, 'grouped inference metering failed; settling one by one'),
    });
  }

  /** The credits a usage costs at the call's prices. */
  credits(call: HeldCall, usage: CallUsage): bigint {
    return inferenceCredits(call.model.price, usage.prompt_tokens, usage.completion_tokens);
  }

  async settle(call: HeldCall, usage: CallUsage, response?: unknown): Promise<{ credits: bigint }> {
    const credits = this.credits(call, usage);
    const model = call.model.baseModel;
    this.metrics?.tokens.inc({ model, kind: 'prompt' }, usage.prompt_tokens);
    this.metrics?.tokens.inc({ model, kind: 'completion' }, usage.completion_tokens);
    this.metrics?.credits.inc({ model }, Number(credits));
    await this.group.submit({
      callId: call.callId,
      amount: credits,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      ...(call.keepResponse && response !== undefined ? { response } : {}),
    });
    return { credits };
  }

  /**
   * A settlement that found no hold: the hold was lost (it commits asynchronously, so a Postgres
   * crash can take the last few hundred ms of holds with it). The call is then not charged; say so.
   */
  private check(callId: string, result: SettleResult): void {
    if (result.outcome !== 'no_hold') return;
    this.metrics?.settledWithoutHold.inc();
    this.log?.error(
      { callId },
      'inference call settled without a hold (lost in a database crash?): not charged',
    );
  }

  private async settleOne(input: SettleInput): Promise<void> {
    try {
      this.check(input.callId, await settleCall(this.db, input));
      return;
    } catch (err) {
      this.log?.warn(
        { err, callId: input.callId },
        'inference metering failed; deferring the usage to the outbox',
      );
    }
    if (await this.defer(input)) this.metrics?.meteringDeferred.inc({ via: 'outbox' });
    else {
      this.metrics?.meteringDeferred.inc({ via: 'memory' });
      this.waiting.set(input.callId, input);
      this.schedule();
    }
  }

  async release(call: HeldCall): Promise<void> {
    try {
      await releaseHold(this.db, call.callId);
    } catch (err) {
      // The hold stays pending (reserved, never charged); the ledger shows it as an open hold.
      this.log?.error({ err, callId: call.callId }, 'inference hold release failed');
    }
  }

  /** Calls whose usage is waiting in this process (nothing could be written yet). */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Stops the retry timer after one last attempt. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.size > 0) await this.retryWaiting();
    if (this.waiting.size > 0) {
      this.log?.error(
        { calls: [...this.waiting.keys()] },
        'closing with inference usage that could not be written: holds stay pending',
      );
    }
  }

  private async defer(input: SettleInput): Promise<boolean> {
    try {
      await deferInferenceUsage(this.db, {
        callId: input.callId,
        promptTokens: input.promptTokens,
        completionTokens: input.completionTokens,
        credits: input.amount,
        response: input.response ?? null,
      });
    } catch (err) {
      this.log?.error(
        { err, callId: input.callId },
        'could not defer inference usage either; retrying in process',
      );
      return false;
    }
    void this.flushOutbox?.();
    return true;
  }

  private schedule(): void {
    if (this.timer || this.waiting.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.retryWaiting().finally(() => this.schedule());
    }, RETRY_MS);
    this.timer.unref();
  }

  private async retryWaiting(): Promise<void> {
    for (const [callId, input] of [...this.waiting]) {
      let done = false;
      try {
        this.check(callId, await settleCall(this.db, input));
        done = true;
      } catch {
        done = await this.defer(input);
      }
      if (done) this.waiting.delete(callId);
    }
  }
}
