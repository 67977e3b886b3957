import { createHash } from 'node:crypto';
import type { Executor } from '@tuneline/db';
import { CompiledQuery, type QueryResult } from 'kysely';
import { licenseAccountId, SYSTEM_STRIPES } from './accounts.ts';

/**
 * Inference calls in the ledger (functions of migration 0010). A call holds its worst case before the
 * provider is called (`hold-<callId>`, pending, license → a system-inference stripe), then resolves the
 * hold exactly once: `usage-<callId>` posts what the provider reported and releases the rest, or
 * `release-<callId>` gives it back whole when there was no answer. Each operation is one statement (one
 * round trip; its own transaction when run alone) and a replay of it changes nothing.
 *
 * The rule (issue 16.3): a call is forwarded only when its worst case fits in the available credits,
 * checked and held in one conditional UPDATE, so concurrent calls can never overdraw through the holds.
 * The charge is always what the provider reports; if that exceeds the hold (the local prompt count
 * was low), the excess is charged too and, when it leaves the balance below zero, the license is
 * overage-blocked until a top-up, which is what the ledger auditor checks.
 */

const HOLD_SQL =
  'SELECT o_outcome AS outcome, o_available AS available, o_blocked AS blocked, o_call AS call, o_request_hash AS request_hash, o_response AS response FROM inference_hold($1::uuid, $2, $3, $4::bigint, $5, $6::uuid, $7, $8, $9)';
// The same hold, its transaction committing without waiting for the WAL flush (set_config(..., true)
// lasts until the end of the statement's own transaction, and commit reads it after the statement).
const HOLD_ASYNC_SQL = HOLD_SQL.replace(
  'SELECT ',
  "SELECT set_config('synchronous_commit', 'off', true) AS async_commit, ",
);
const SETTLE_SQL =
  'SELECT o_outcome AS outcome, o_held AS held, o_charged AS charged FROM inference_settle($1::uuid, $2::bigint, $3::integer, $4::integer, $5::jsonb)';
const RELEASE_SQL = 'SELECT o_outcome AS outcome, o_held AS held FROM inference_release($1::uuid)';

/** The system-inference stripe a call's hold credits (from its own id, so calls spread over 64 rows). */
export function inferenceAccountId(callId: string): string {
  return `system-inference-${createHash('sha256').update(callId).digest().readUInt16BE(0) % SYSTEM_STRIPES}`;
}

export const callTransferIds = {
  hold: (callId: string) => `hold-${callId}`,
  usage: (callId: string) => `usage-${callId}`,
  release: (callId: string) => `release-${callId}`,
};

export interface HoldInput {
  callId: string;
  licenseId: string;
  fineTuneId: string;
  /** The model name the caller used. */
  model: string;
  amount: bigint;
  /** With an Idempotency-Key: the key and a hash of the request, claimed in the same statement. */
  idempotency?: { key: string; requestHash: string };
}

export type HoldResult =
  | { outcome: 'held' }
  | { outcome: 'refused'; available: bigint; required: bigint; overageBlocked: boolean }
  | { outcome: 'replay'; callId: string; requestHash: string; response: unknown | null };

/** A hold statement's answer for one call that was held or refused (`required`: the amount asked). */
function admission(
  row: { outcome: string; available: string | null; blocked: boolean | null },
  required: bigint,
): HoldResult {
  if (row.outcome === 'held') return { outcome: 'held' };
  return {
    outcome: 'refused',
    available: BigInt(row.available ?? 0),
    required,
    overageBlocked: row.blocked === true,
  };
}

/**
 * Holds a call's worst case; refused (nothing written) when the available credits do not cover it.
 * `durable: false` commits the hold without waiting for its WAL flush (the gateway's default; see
 * docs/GATEWAY.md for why a hold lost in a Postgres crash cannot overdraw). Inside a caller's
 * transaction it would make that whole transaction's commit asynchronous: use it alone.
 */
export async function holdCall(
  db: Executor,
  input: HoldInput,
  opts: { durable?: boolean } = {},
): Promise<HoldResult> {
  if (input.amount < 0n) throw new RangeError(`hold amounts are non-negative (got ${input.amount})`);
  const result = (await db.executeQuery(
    CompiledQuery.raw(opts.durable === false ? HOLD_ASYNC_SQL : HOLD_SQL, [
      input.callId,
      licenseAccountId(input.licenseId),
      inferenceAccountId(input.callId),
      input.amount.toString(),
      input.licenseId,
      input.fineTuneId,
      input.model,
      input.idempotency?.key ?? null,
      input.idempotency?.requestHash ?? null,
    ]),
  )) as QueryResult<{
    outcome: 'held' | 'refused' | 'replay';
    available: string | null;
    blocked: boolean | null;
    call: string | null;
    request_hash: string | null;
    response: unknown | null;
  }>;
  const row = result.rows[0];
  if (!row) throw new Error('inference_hold returned no row');
  if (row.outcome !== 'replay') return admission(row, input.amount);
  return {
    outcome: 'replay',
    callId: row.call ?? '',
    requestHash: row.request_hash ?? '',
    response: row.response,
  };
}

const HOLD_MANY_SQL =
  "SELECT set_config('synchronous_commit', $8, true) AS commit_mode, o_call AS call, o_outcome AS outcome, o_available AS available, o_blocked AS blocked FROM inference_hold_many($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::uuid[], $7::text[])";

/**
 * Holds several calls in one statement (one round trip, one commit), each admitted exactly as
 * `holdCall` would admit it in the group's order (migration 0086). Calls with an Idempotency-Key
 * cannot be grouped: use `holdCall`. All or nothing: an error (a repeated call id, say) rolls the
 * group back, and the caller holds its calls one by one.
 */
export async function holdCalls(
  db: Executor,
  inputs: readonly HoldInput[],
  opts: { durable?: boolean } = {},
): Promise<Map<string, HoldResult>> {
  for (const input of inputs) {
    if (input.amount < 0n) throw new RangeError(`hold amounts are non-negative (got ${input.amount})`);
    if (input.idempotency)
      throw new RangeError('a hold with an Idempotency-Key is not grouped: use holdCall');
  }
  const result = (await db.executeQuery(
    CompiledQuery.raw(HOLD_MANY_SQL, [
      inputs.map((i) => i.callId),
      inputs.map((i) => licenseAccountId(i.licenseId)),
      inputs.map((i) => inferenceAccountId(i.callId)),
      inputs.map((i) => i.amount.toString()),
      inputs.map((i) => i.licenseId),
      inputs.map((i) => i.fineTuneId),
      inputs.map((i) => i.model),
      opts.durable === false ? 'off' : 'on',
    ]),
  )) as QueryResult<{
    call: string;
    outcome: 'held' | 'refused';
    available: string | null;
    blocked: boolean | null;
  }>;
  const amounts = new Map(inputs.map((i) => [i.callId, i.amount]));
  return new Map(result.rows.map((row) => [row.call, admission(row, amounts.get(row.call) ?? 0n)]));
}

export interface SettleInput {
  callId: string;
  /** The charge: the provider's reported usage at the catalogue's prices. */
  amount: bigint;
  promptTokens: number;
  completionTokens: number;
  /** The answer, kept for an Idempotency-Key replay (ignored when the call had no key). */
  response?: unknown;
}

export type SettleResult =
  | { outcome: 'settled' | 'already'; held: bigint; charged: bigint }
  | { outcome: 'released'; held: bigint }
  | { outcome: 'no_hold' };

/**
 * Posts a call's usage against its hold, releasing the rest, and records the `inference_usage` row
 * (id = call id) in the same statement. Exactly once: a second settle (a retry, the outbox) is
 * `already`, and changes nothing.
 */
export async function settleCall(db: Executor, input: SettleInput): Promise<SettleResult> {
  if (input.amount < 0n) throw new RangeError(`charges are non-negative (got ${input.amount})`);
  const result = (await db.executeQuery(
    CompiledQuery.raw(SETTLE_SQL, [
      input.callId,
      input.amount.toString(),
      input.promptTokens,
      input.completionTokens,
      input.response === undefined ? null : JSON.stringify(input.response),
    ]),
  )) as QueryResult<{ outcome: SettleResult['outcome']; held: string | null; charged: string | null }>;
  const row = result.rows[0];
  if (!row || row.outcome === 'no_hold') return { outcome: 'no_hold' };
  if (row.outcome === 'released') return { outcome: 'released', held: BigInt(row.held ?? 0) };
  return { outcome: row.outcome, held: BigInt(row.held ?? 0), charged: BigInt(row.charged ?? 0) };
}

/** Gives a call's hold back whole (the provider did not answer); frees its Idempotency-Key. */
export async function releaseCall(
  db: Executor,
  callId: string,
): Promise<{ outcome: 'released' | 'already' | 'settled' | 'no_hold'; held?: bigint }> {
  const result = (await db.executeQuery(CompiledQuery.raw(RELEASE_SQL, [callId]))) as QueryResult<{
    outcome: 'released' | 'already' | 'settled' | 'no_hold';
    held: string | null;
  }>;
  const row = result.rows[0];
  if (!row || row.outcome === 'no_hold') return { outcome: 'no_hold' };
  return { outcome: row.outcome, held: BigInt(row.held ?? 0) };
}

const SETTLE_MANY_SQL =
  'SELECT o_call AS call, o_outcome AS outcome, o_held AS held, o_charged AS charged FROM inference_settle_many($1::uuid[], $2::bigint[], $3::integer[], $4::integer[], $5::jsonb[])';

/**
 * Settles several calls in one statement (one round trip, one commit), each exactly as `settleCall`.
 * All or nothing: an error rolls the whole group back (the caller then settles them one by one).
 */
export async function settleCalls(
  db: Executor,
  inputs: readonly SettleInput[],
): Promise<Map<string, SettleResult>> {
  for (const input of inputs) {
    if (input.amount < 0n) throw new RangeError(`charges are non-negative (got ${input.amount})`);
  }
  const result = (await db.executeQuery(
    CompiledQuery.raw(SETTLE_MANY_SQL, [
      inputs.map((i) => i.callId),
      inputs.map((i) => i.amount.toString()),
      inputs.map((i) => i.promptTokens),
      inputs.map((i) => i.completionTokens),
      inputs.map((i) => (i.response === undefined ? null : JSON.stringify(i.response))),
    ]),
  )) as QueryResult<{
    call: string;
    outcome: SettleResult['outcome'];
    held: string | null;
    charged: string | null;
  }>;
  const out = new Map<string, SettleResult>();
  for (const row of result.rows) {
    if (row.outcome === 'no_hold') out.set(row.call, { outcome: 'no_hold' });
    else if (row.outcome === 'released')
      out.set(row.call, { outcome: 'released', held: BigInt(row.held ?? 0) });
    else
      out.set(row.call, {
        outcome: row.outcome,
        held: BigInt(row.held ?? 0),
        charged: BigInt(row.charged ?? 0),
      });
  }
  return out;
}
