import { inferenceUsageMessage } from '@tuneline/contracts';
import type { Selectable } from 'kysely';
import type { Executor } from '../connection.ts';
import type { InferencePendingUsageTable } from '../schema.ts';
import { inTransaction, writeOutbox } from './outbox.ts';
import { firstRecord } from './records.ts';

/** A gateway call's usage whose settlement was deferred (table inference_pending_usage). */
export interface PendingInferenceUsage {
  callId: string;
  promptTokens: number;
  completionTokens: number;
  credits: bigint;
  response: unknown | null;
  appliedAt: Date | null;
}

const toPendingInferenceUsage = (row: Selectable<InferencePendingUsageTable>): PendingInferenceUsage => ({
  callId: row.call_id,
  promptTokens: row.prompt_tokens,
  completionTokens: row.completion_tokens,
  credits: BigInt(row.credits),
  response: row.response,
  appliedAt: row.applied_at,
});

/**
 * Records a call's usage for later, with its `inference-usage` outbox message, in one transaction:
 * the gateway's fallback when settling right after the provider answered failed. Billing applies it
 * (the hold resolves once, so a repeated message or row changes nothing). A second write for the same
 * call keeps the first. Returns whether this call wrote the row.
 */
export async function deferInferenceUsage(
  db: Executor,
  usage: Omit<PendingInferenceUsage, 'appliedAt'>,
): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const row = await tx
      .insertInto('inference_pending_usage')
      .values({
        call_id: usage.callId,
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        credits: usage.credits.toString(),
        response: usage.response === null ? null : JSON.stringify(usage.response),
      })
      .onConflict((oc) => oc.column('call_id').doNothing())
      .returning('call_id')
      .executeTakeFirst();
    if (!row) return false;
    await writeOutbox(tx, inferenceUsageMessage({ callId: usage.callId, correlationId: usage.callId }));
    return true;
  });
}

export async function findPendingInferenceUsage(
  db: Executor,
  callId: string,
): Promise<PendingInferenceUsage | undefined> {
  return firstRecord(
    db.selectFrom('inference_pending_usage').selectAll().where('call_id', '=', callId),
    toPendingInferenceUsage,
  );
}

/** Deferred usages not applied yet, oldest first (billing's recovery sweep re-sends their messages). */
export async function listUnappliedInferenceUsage(db: Executor, limit = 1_000): Promise<string[]> {
  const rows = await db
    .selectFrom('inference_pending_usage')
    .select('call_id')
    .where('applied_at', 'is', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.call_id);
}
