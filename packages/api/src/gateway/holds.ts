import { createHash, randomUUID } from 'node:crypto';
import { type Encoding, TokenCounter } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { holdCall, releaseCall } from '@tuneline/ledger';
import { HttpError } from '../http.ts';
import { type InferencePrice, inferenceCredits } from '../pricing.ts';

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
  promptTokens: number;
  completionTokens: number;
  credits: bigint;
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

/** Prompt tokens as OpenAI's cookbook counts a chat (3 per message, 3 priming the reply), plus extras. */
export function countPromptTokens(body: Record<string, unknown>, encoding: Encoding): number {
  const c = counter(encoding);
  let total = 3;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages as Array<Record<string, unknown>>) {
    total += 3;
    if (typeof m.role === 'string') total += c.count(m.role);
    const content = m.content;
    if (typeof content === 'string') total += c.count(content);
    else if (content != null) total += c.count(JSON.stringify(content));
    if (typeof m.name === 'string') total += 1 + c.count(m.name);
    if (m.tool_calls != null) total += c.count(JSON.stringify(m.tool_calls));
  }
  // Tools, functions and a JSON schema reach the model as prompt text: count their JSON (an upper bound).
  for (const key of ['tools', 'functions', 'response_format'] as const) {
    const v = body[key];
    if (v != null && typeof v === 'object') total += c.count(JSON.stringify(v));
  }
  return total;
}

export function worstCase(body: Record<string, unknown>, model: CallModel): WorstCase {
  const promptTokens = countPromptTokens(body, model.encoding);
  const asked = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens);
  const perChoice = Math.min(asked ?? model.maxOutputTokens, model.maxOutputTokens);
  const completionTokens = perChoice * (positiveInt(body.n) ?? 1);
  return {
    promptTokens,
    completionTokens,
    credits: inferenceCredits(model.price, promptTokens, completionTokens),
  };
}

/** The request's identity for an Idempotency-Key: the same key with another body is refused. */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

export type Hold =
  | { kind: 'held'; callId: string; worstCase: WorstCase }
  | { kind: 'replay'; response: unknown };

/**
 * Holds the call's worst case. 402 when it does not fit (or the license is overage-blocked); with an
 * Idempotency-Key already used: the first answer (`replay`), 409 while that call is in flight, 422 for
 * another request under the same key.
 */
export async function holdWorstCase(
  db: Db,
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
  const cost = input.cost ?? worstCase(input.body, input.model);
  const hash = input.idempotencyKey !== undefined ? requestHash(input.body) : undefined;
  const result = await holdCall(db, {
    callId,
    licenseId: input.licenseId,
    fineTuneId: input.model.fineTuneId,
    model: input.model.model,
    amount: cost.credits,
    ...(input.idempotencyKey !== undefined && hash
      ? { idempotency: { key: input.idempotencyKey, requestHash: hash } }
      : {}),
  });
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
