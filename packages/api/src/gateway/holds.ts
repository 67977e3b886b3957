import { createHash, randomUUID } from 'node:crypto';
import { type Encoding, TokenCounter } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { type HoldInput, type HoldResult, holdCall, holdCalls, releaseCall } from '@tuneline/ledger';
import { HttpError } from '../http.ts';
import { type InferencePrice, inferenceCredits } from '../pricing.ts';
import { GroupCommit } from './group-commit.ts';
import type { ApiMetrics } from './metrics.ts';

/**
 * Step "hold" of a gateway call: the call's worst case, held in the ledger before anything is
 * forwarded (issue 16.3 / 19.3). The worst case is the prompt counted here (the cookbook's chat
 * framing, the message texts, and any tools or response format sent along) plus the most the
 * completion may take (`max_completion_tokens`, else `max_tokens`, else the model's output limit,
 * times `n`), at the catalogue's prices. The balance check and the hold are one statement
 * (`inference_hold`), so concurrent calls cannot overdraw: a call whose worst case does not fit is 402.
 */

export interface CallModel {
  fineTuneId: string;
  /** The fine-tuned model that serves the call (what the caller named, or what its alias points at). */
  model: string;
  /** Its fine-tune's provider (null or absent: the deployment default), which serves the call. */
  provider?: string | null;
  /** The name the provider serves it under when not `model`: the deployment's on Azure. */
  providerModel?: string;
  /** The alias the caller named, when it named one. */
  alias?: string | null;
  /** The fine-tune's base model (prices, metrics labels). */
  baseModel: string;
  encoding: Encoding;
  /** Most completion tokens one choice may take. */
  maxOutputTokens: number;
  price: InferencePrice;
}

export interface WorstCase {
  /** The prompt as held: counted exactly, or its upper bound (see `exact`). */
  promptTokens: number;
  completionTokens: number;
  credits: bigint;
  /** Whether `promptTokens` is the tokenizer's count (else the byte-count upper bound). */
  exact: boolean;
}

const counters = new Map<Encoding, TokenCounter>();

function counter(encoding: Encoding): TokenCounter {
  let c = counters.get(encoding);
  if (!c) {
    c = new TokenCounter(encoding);
    counters.set(encoding, c);
  }
  return c;
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * A chat's prompt as OpenAI's cookbook frames it (3 tokens per message, 3 priming the reply), each
 * text measured by `measure`: the tokenizer (exact), or its UTF-8 byte length (an upper bound: a
 * byte-level BPE token covers at least one byte).
 */
function framedPrompt(body: Record<string, unknown>, measure: (text: string) => number): number {
  let total = 3;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages as Array<Record<string, unknown>>) {
    total += 3;
    if (typeof m.role === 'string') total += measure(m.role);
    const content = m.content;
    if (typeof content === 'string') total += measure(content);
    else if (content != null) total += measure(JSON.stringify(content));
    if (typeof m.name === 'string') total += 1 + measure(m.name);
    if (m.tool_calls != null) total += measure(JSON.stringify(m.tool_calls));
  }
  // Tools, functions and a JSON schema reach the model as prompt text: count their JSON (an upper bound).
  for (const key of ['tools', 'functions', 'response_format'] as const) {
    const v = body[key];
    if (v != null && typeof v === 'object') total += measure(JSON.stringify(v));
  }
  return total;
}

/** Prompt tokens as OpenAI's cookbook counts a chat (3 per message, 3 priming the reply), plus extras. */
export function countPromptTokens(body: Record<string, unknown>, encoding: Encoding): number {
  const c = counter(encoding);
  return framedPrompt(body, (text) => c.count(text));
}

const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * An upper bound of `countPromptTokens` that costs no tokenizer pass: the same framing, each text at
 * its UTF-8 byte count. About 4x the exact count for English text.
 */
export function promptTokenBound(body: Record<string, unknown>): number {
  return framedPrompt(body, utf8Bytes);
}

/** `bound`: the prompt at its byte-count upper bound; `exact`: counted with the tokenizer. */
export type PromptCount = 'bound' | 'exact';

export function worstCase(
  body: Record<string, unknown>,
  model: CallModel,
  count: PromptCount = 'bound',
): WorstCase {
  const promptTokens = count === 'exact' ? countPromptTokens(body, model.encoding) : promptTokenBound(body);
  const asked = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens);
  const perChoice = Math.min(asked ?? model.maxOutputTokens, model.maxOutputTokens);
  const completionTokens = perChoice * (positiveInt(body.n) ?? 1);
  return {
    promptTokens,
    completionTokens,
    credits: inferenceCredits(model.price, promptTokens, completionTokens),
    exact: count === 'exact',
  };
}

/**
 * The tokens the per-minute limit counts for a call: its completion maximum plus its prompt, which,
 * when only bounded, is estimated at 4 bytes a token as OpenAI's own limiter estimates it from the
 * characters (the byte bound would count English text four times over).
 */
export function rateLimitTokens(cost: WorstCase): number {
  return cost.completionTokens + (cost.exact ? cost.promptTokens : Math.ceil(cost.promptTokens / 4));
}

/** What a call whose answer reported no usage is charged: its exact worst case, as before holds were bounds. */
export function worstUsage(
  body: Record<string, unknown>,
  model: CallModel,
  held: WorstCase,
): { prompt_tokens: number; completion_tokens: number } {
  const exact = held.exact ? held : worstCase(body, model, 'exact');
  return { prompt_tokens: exact.promptTokens, completion_tokens: exact.completionTokens };
}

/** The request's identity for an Idempotency-Key: the same key with another body is refused. */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

export type Hold =
  | { kind: 'held'; callId: string; worstCase: WorstCase }
  | { kind: 'replay'; response: unknown };

/** Most holds written in one statement. */
const MAX_HOLD_GROUP = 128;

/**
 * Writes the gateway's holds: the holds that arrive while one is being written go together in one
 * statement (`holdCalls`, migration 0086: each admitted as alone, in arrival order), a group of one or
 * a failed group's calls one by one (`holdCall`). A call with an Idempotency-Key is always held alone
 * (its claim is part of its hold). `commit: 'async'`: the holds' transactions do not wait for their WAL
 * flush (docs/GATEWAY.md says why that cannot overdraw).
 */
export class GatewayHolder {
  /** An `Error` result: that call's hold was not answered by a group that committed (never re-held). */
  private readonly group: GroupCommit<HoldInput, HoldResult | Error>;
  private readonly durable: boolean;

  constructor(
    private readonly db: Db,
    commit: 'async' | 'durable',
    metrics?: ApiMetrics,
  ) {
    this.durable = commit !== 'async';
    this.group = new GroupCommit<HoldInput, HoldResult | Error>({
      maxGroup: MAX_HOLD_GROUP,
      many: async (inputs) => {
        const results = await holdCalls(this.db, inputs, { durable: this.durable });
        return inputs.map(
          (i) =>
            results.get(i.callId) ?? new Error(`inference_hold_many returned no row for call ${i.callId}`),
        );
      },
      one: (input) => holdCall(this.db, input, { durable: this.durable }),
      onGroup: (size) => metrics?.holdGroup.observe(size),
    });
  }

  async hold(input: HoldInput): Promise<HoldResult> {
    if (input.idempotency) return holdCall(this.db, input, { durable: this.durable });
    const result = await this.group.submit(input);
    if (result instanceof Error) throw result;
    return result;
  }
}

/**
 * Holds the call's worst case. 402 when it does not fit (or the license is overage-blocked); with an
 * Idempotency-Key already used: the first answer (`replay`), 409 while that call is in flight, 422 for
 * another request under the same key. A bounded worst case that does not fit is counted exactly and
 * tried once more when that fits, so the bound only ever costs a second look near an empty balance.
 */
export async function holdWorstCase(
  holder: Pick<GatewayHolder, 'hold'>,
  input: {
    licenseId: string;
    model: CallModel;
    body: Record<string, unknown>;
    idempotencyKey?: string;
    /** The call's worst case when already computed (the rate limit counts it too). */
    cost?: WorstCase;
  },
): Promise<Hold> {
  const callId = randomUUID();
  let cost = input.cost ?? worstCase(input.body, input.model);
  const hash = input.idempotencyKey !== undefined ? requestHash(input.body) : undefined;
  const hold = (amount: bigint) =>
    holder.hold({
      callId,
      licenseId: input.licenseId,
      fineTuneId: input.model.fineTuneId,
      model: input.model.model,
      amount,
      ...(input.idempotencyKey !== undefined && hash
        ? { idempotency: { key: input.idempotencyKey, requestHash: hash } }
        : {}),
    });
  let result = await hold(cost.credits);
  if (result.outcome === 'refused' && !result.overageBlocked && !cost.exact) {
    const exact = worstCase(input.body, input.model, 'exact');
    cost = exact;
    if (exact.credits <= result.available) result = await hold(exact.credits);
    else result = { ...result, required: exact.credits };
  }
  if (result.outcome === 'held') return { kind: 'held', callId, worstCase: cost };
  if (result.outcome === 'refused') {
    if (result.overageBlocked) {
      throw new HttpError(
        402,
        `credits exhausted: an earlier charge exceeded the balance (available: ${result.available}); top up to continue`,
      );
    }
    throw new HttpError(
      402,
      `insufficient credits for this call's worst case: needs ${result.required} (${cost.promptTokens} prompt + up to ${cost.completionTokens} completion tokens), available ${result.available}, short by ${result.required - result.available}`,
    );
  }
  if (result.requestHash !== hash) {
    throw new HttpError(422, 'this Idempotency-Key was used with a different request');
  }
  if (result.response === null) {
    throw new HttpError(409, 'a request with this Idempotency-Key is still in progress; retry later');
  }
  return { kind: 'replay', response: result.response };
}

/** Gives the hold back (the provider did not answer). Errors are the caller's to log. */
export async function releaseHold(db: Db, callId: string): Promise<void> {
  await releaseCall(db, callId);
}
