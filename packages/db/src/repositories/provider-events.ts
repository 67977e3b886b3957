import type { Selectable } from 'kysely';
import type { Executor } from '../connection.ts';
import type { CheckpointsTable, ProviderEventsTable } from '../schema.ts';

/** What the provider reported about a job: its events and checkpoints, deduplicated by the provider's ids. */

export interface ProviderEventRecord {
  /** The provider's event id (`ftevent-...`). */
  id: string;
  createdAt: Date;
  level: string;
  message: string;
  type: string | null;
  data: unknown;
}

export interface CheckpointRecord {
  id: string;
  step: number;
  fineTunedModelCheckpoint: string;
  metrics: unknown;
  createdAt: Date;
}

const toProviderEventRecord = (e: Selectable<ProviderEventsTable>): ProviderEventRecord => ({
  id: e.id,
  createdAt: e.created_at,
  level: e.level,
  message: e.message,
  type: e.type,
  data: e.data,
});

const toCheckpointRecord = (c: Selectable<CheckpointsTable>): CheckpointRecord => ({
  id: c.id,
  step: c.step,
  fineTunedModelCheckpoint: c.fine_tuned_model_checkpoint,
  metrics: c.metrics,
  createdAt: c.created_at,
});

/** Events are keyed by the provider's id: a second poll that sees them again inserts nothing. */
export async function insertProviderEvents(
  tx: Executor,
  fineTuneId: string,
  events: readonly ProviderEventRecord[],
): Promise<number> {
  if (events.length === 0) return 0;
  const result = await tx
    .insertInto('provider_events')
    .values(
      events.map((e) => ({
        id: e.id,
        fine_tune_id: fineTuneId,
        created_at: e.createdAt,
        level: e.level,
        message: e.message,
        type: e.type,
        data: e.data === undefined || e.data === null ? null : JSON.stringify(e.data),
      })),
    )
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

export async function insertCheckpoints(
  tx: Executor,
  fineTuneId: string,
  checkpoints: readonly CheckpointRecord[],
): Promise<number> {
  if (checkpoints.length === 0) return 0;
  const result = await tx
    .insertInto('checkpoints')
    .values(
      checkpoints.map((c) => ({
        id: c.id,
        fine_tune_id: fineTuneId,
        step: c.step,
        fine_tuned_model_checkpoint: c.fineTunedModelCheckpoint,
        metrics: JSON.stringify(c.metrics ?? {}),
        created_at: c.createdAt,
      })),
    )
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

/** A fine-tune's events, oldest first. */
export async function listProviderEvents(db: Executor, fineTuneId: string): Promise<ProviderEventRecord[]> {
  const rows = await db
    .selectFrom('provider_events')
    .selectAll()
    .where('fine_tune_id', '=', fineTuneId)
    .orderBy('created_at')
    .execute();
  return rows.map(toProviderEventRecord);
}

/** A fine-tune's checkpoints by step. */
export async function listCheckpoints(db: Executor, fineTuneId: string): Promise<CheckpointRecord[]> {
  const rows = await db
    .selectFrom('checkpoints')
    .selectAll()
    .where('fine_tune_id', '=', fineTuneId)
    .orderBy('step')
    .execute();
  return rows.map(toCheckpointRecord);
}
