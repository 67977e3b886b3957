import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { FineTuneStatus, ModelMigrationsTable } from '../schema.ts';
import { aliasesOfFineTunes } from './aliases.ts';
import { type FineTuneRecord, toFineTuneRecord } from './fine-tunes.ts';
import { bigintOrNull } from './records.ts';

/**
 * One-call migrations (issue 21.4, migration 0070): the row a migration is, its natural and idempotency
 * keys, the join to what it queued (request → dataset → fine-tune), and its decision, recorded once.
 * The decision itself is the lifecycle's (lifecycle/migration.ts).
 */

export type MigrationRule = ModelMigrationsTable['promote'];
/** `deploying`: promoted, the new model's deployment started; its aliases move when it serves. */
export type MigrationStatus = 'running' | 'deploying' | 'succeeded' | 'failed';

/** An alias a migration moved to its new model. */
export interface MovedAlias {
  name: string;
  fromFineTuneId: string;
  toFineTuneId: string;
}

export interface MigrationRecord {
  id: string;
  licenseId: string;
  from: { fineTuneId: string; model: string | null; baseModel: string; provider: string | null };
  /** The model the new one is evaluated against: the old one, or null when it could not answer. */
  championFineTuneId: string | null;
  target: { provider: string; baseModel: string; hyperparameters: unknown };
  promote: MigrationRule;
  /** The new model's hourly deployment fee when the target serves only deployed models (Azure). */
  hostingCreditsPerHour: bigint | null;
  /** The fine-tune request it queued (the license's `requestId`). */
  requestId: string;
  idempotencyKey: string | null;
  actor: string;
  status: MigrationStatus;
  /** Where the new model got to: the request, its dataset, its fine-tune (null: not that far yet). */
  progress: {
    requestStatus: string | null;
    requestError: string | null;
    datasetId: string | null;
    datasetStatus: string | null;
    fineTuneId: string | null;
    fineTuneStatus: FineTuneStatus | null;
    model: string | null;
  };
  decision: 'promoted' | 'kept' | null;
  reason: string | null;
  aliases: MovedAlias[];
  createdAt: Date;
  decidedAt: Date | null;
}

/** The fine-tune request id a migration queues: one per migration. */
export const migrationRequestId = (migrationId: string): string => `migration-${migrationId}`;

interface MigrationRow {
  id: string;
  license_id: string;
  from_fine_tune_id: string;
  from_model: string | null;
  from_base_model: string;
  from_provider: string | null;
  champion_fine_tune_id: string | null;
  provider: string;
  base_model: string;
  hyperparameters: unknown;
  promote: MigrationRule;
  hosting_credits_per_hour: string | null;
  request_id: string;
  idempotency_key: string | null;
  actor: string;
  status: MigrationStatus;
  to_fine_tune_id: string | null;
  decision: 'promoted' | 'kept' | null;
  reason: string | null;
  aliases: unknown;
  created_at: Date;
  decided_at: Date | null;
  request_status: string | null;
  request_error: string | null;
  dataset_id: string | null;
  dataset_status: string | null;
  new_fine_tune_id: string | null;
  new_status: FineTuneStatus | null;
  new_model: string | null;
}

const toMigrationRecord = (r: MigrationRow): MigrationRecord => ({
  id: r.id,
  licenseId: r.license_id,
  from: {
    fineTuneId: r.from_fine_tune_id,
    model: r.from_model,
    baseModel: r.from_base_model,
    provider: r.from_provider,
  },
  championFineTuneId: r.champion_fine_tune_id,
  target: { provider: r.provider, baseModel: r.base_model, hyperparameters: r.hyperparameters },
  promote: r.promote,
  hostingCreditsPerHour: bigintOrNull(r.hosting_credits_per_hour),
  requestId: r.request_id,
  idempotencyKey: r.idempotency_key,
  actor: r.actor,
  status: r.status,
  progress: {
    requestStatus: r.request_status,
    requestError: r.request_error,
    datasetId: r.dataset_id,
    datasetStatus: r.dataset_status,
    fineTuneId: r.new_fine_tune_id,
    fineTuneStatus: r.new_status,
    model: r.new_model,
  },
  decision: r.decision,
  reason: r.reason,
  aliases: (r.aliases ?? []) as MovedAlias[],
  createdAt: r.created_at,
  decidedAt: r.decided_at,
});

/**
 * Migrations with where their new model got to: the request they queued, its dataset, and the decided
 * fine-tune or else the dataset's first (the auto-train one the uploader creates).
 */
const selectMigrations = (where: ReturnType<typeof sql>, limit = 500) => sql<MigrationRow>`
  SELECT m.id, m.license_id, m.from_fine_tune_id, ff.fine_tuned_model AS from_model,
         ff.base_model AS from_base_model, ff.provider AS from_provider, m.champion_fine_tune_id,
         m.provider, m.base_model, m.hyperparameters, m.promote, m.hosting_credits_per_hour, m.request_id,
         m.idempotency_key, m.actor,
         m.status, m.to_fine_tune_id, m.decision, m.reason, m.aliases, m.created_at, m.decided_at,
         r.status AS request_status, r.error AS request_error, d.id AS dataset_id, d.status AS dataset_status,
         t.id AS new_fine_tune_id, t.status AS new_status, t.fine_tuned_model AS new_model
  FROM model_migrations m
  JOIN fine_tunes ff ON ff.id = m.from_fine_tune_id
  LEFT JOIN fine_tune_requests r ON r.license_id = m.license_id AND r.request_id = m.request_id
  LEFT JOIN datasets d ON d.request_row_id = r.id
  LEFT JOIN LATERAL (
    SELECT f.id, f.status, f.fine_tuned_model FROM fine_tunes f
    WHERE f.id = m.to_fine_tune_id OR (m.to_fine_tune_id IS NULL AND f.dataset_id = d.id)
    ORDER BY f.created_at, f.id LIMIT 1
  ) t ON true
  WHERE ${where}
  ORDER BY m.created_at DESC, m.id DESC
  LIMIT ${limit}`;

async function selectOne(db: Executor, where: ReturnType<typeof sql>): Promise<MigrationRecord | undefined> {
  const { rows } = await selectMigrations(where, 1).execute(db);
  return rows[0] ? toMigrationRecord(rows[0]) : undefined;
}

/** One migration of the license (undefined for another license's). */
export function findMigration(
  db: Executor,
  licenseId: string,
  id: string,
): Promise<MigrationRecord | undefined> {
  return selectOne(db, sql`m.license_id = ${licenseId} AND m.id = ${id}`);
}

/**
 * The license's migrations, newest first: all, those from one fine-tune, or the one that trained it
 * (`fineTuneId`: from or to it).
 */
export async function listMigrations(
  db: Executor,
  licenseId: string,
  filter: { fineTuneId?: string; limit?: number } = {},
): Promise<MigrationRecord[]> {
  const where = filter.fineTuneId
    ? sql`m.license_id = ${licenseId} AND (m.from_fine_tune_id = ${filter.fineTuneId} OR t.id = ${filter.fineTuneId})`
    : sql`m.license_id = ${licenseId}`;
  const { rows } = await selectMigrations(where, filter.limit ?? 500).execute(db);
  return rows.map(toMigrationRecord);
}

export interface NewMigration {
  id: string;
  licenseId: string;
  fromFineTuneId: string;
  championFineTuneId: string | null;
  provider: string;
  baseModel: string;
  hyperparameters: unknown;
  promote: MigrationRule;
  /** The new model's hourly deployment fee when the target serves only deployed models (Azure). */
  hostingCreditsPerHour: bigint | null;
  idempotencyKey: string | null;
  actor: string;
}

/**
 * Records a migration, unless its key is taken: with an idempotency key, (license, key); without, the
 * same fine-tune and target. `created: false` returns the migration that holds the key (the caller
 * compares it with what it asked for).
 */
export async function insertMigration(
  tx: Executor,
  m: NewMigration,
): Promise<{ migration: MigrationRecord; created: boolean }> {
  const inserted = await tx
    .insertInto('model_migrations')
    .values({
      id: m.id,
      license_id: m.licenseId,
      from_fine_tune_id: m.fromFineTuneId,
      champion_fine_tune_id: m.championFineTuneId,
      provider: m.provider,
      base_model: m.baseModel,
      hyperparameters: JSON.stringify(m.hyperparameters),
      promote: m.promote,
      hosting_credits_per_hour: m.hostingCreditsPerHour,
      request_id: migrationRequestId(m.id),
      idempotency_key: m.idempotencyKey,
      actor: m.actor,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('id')
    .executeTakeFirst();
  const where = inserted
    ? sql`m.id = ${inserted.id}`
    : m.idempotencyKey !== null
      ? sql`m.license_id = ${m.licenseId} AND m.idempotency_key = ${m.idempotencyKey}`
      : sql`m.from_fine_tune_id = ${m.fromFineTuneId} AND m.provider = ${m.provider}
            AND m.base_model = ${m.baseModel} AND m.idempotency_key IS NULL`;
  const migration = await selectOne(tx, where);
  if (!migration) throw new Error(`migration ${m.id}: neither inserted nor found by its key`);
  return { migration, created: Boolean(inserted) };
}

/** The license's migration recorded under this idempotency key, if any. */
export function findMigrationByKey(
  db: Executor,
  licenseId: string,
  idempotencyKey: string,
): Promise<MigrationRecord | undefined> {
  return selectOne(db, sql`m.license_id = ${licenseId} AND m.idempotency_key = ${idempotencyKey}`);
}

/** The migration without an idempotency key from this fine-tune to this target, if there is one. */
export function findMigrationByTarget(
  db: Executor,
  input: { licenseId: string; fromFineTuneId: string; provider: string; baseModel: string },
): Promise<MigrationRecord | undefined> {
  return selectOne(
    db,
    sql`m.license_id = ${input.licenseId} AND m.from_fine_tune_id = ${input.fromFineTuneId}
        AND m.provider = ${input.provider} AND m.base_model = ${input.baseModel} AND m.idempotency_key IS NULL`,
  );
}

/** The migration whose request built this fine-tune's dataset, with its champion's model name. */
export async function findMigrationByFineTune(
  db: Executor,
  fineTuneId: string,
): Promise<
  | {
      id: string;
      licenseId: string;
      datasetId: string;
      fromFineTuneId: string;
      championFineTuneId: string | null;
      championModel: string | null;
      promote: MigrationRule;
      hostingCreditsPerHour: bigint | null;
      status: MigrationStatus;
    }
  | undefined
> {
  const row = await db
    .selectFrom('fine_tunes as f')
    .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
    .innerJoin('fine_tune_requests as r', 'r.id', 'd.request_row_id')
    .innerJoin('model_migrations as m', (join) =>
      join.onRef('m.request_id', '=', 'r.request_id').onRef('m.license_id', '=', 'r.license_id'),
    )
    .leftJoin('fine_tunes as c', 'c.id', 'm.champion_fine_tune_id')
    .select([
      'm.id',
      'm.license_id',
      'd.id as dataset_id',
      'm.from_fine_tune_id',
      'm.champion_fine_tune_id',
      'c.fine_tuned_model as champion_model',
      'm.promote',
      'm.hosting_credits_per_hour',
      'm.status',
    ])
    .where('f.id', '=', fineTuneId)
    .executeTakeFirst();
  return row
    ? {
        id: row.id,
        licenseId: row.license_id,
        datasetId: row.dataset_id,
        fromFineTuneId: row.from_fine_tune_id,
        championFineTuneId: row.champion_fine_tune_id,
        championModel: row.champion_model,
        promote: row.promote,
        hostingCreditsPerHour: bigintOrNull(row.hosting_credits_per_hour),
        status: row.status,
      }
    : undefined;
}

/** Locks a migration's row while it is `status` (undefined: no such migration, or it moved on). */
export async function lockMigration(
  tx: Executor,
  id: string,
  status: 'running' | 'deploying',
): Promise<{ id: string } | undefined> {
  return tx
    .selectFrom('model_migrations')
    .select('id')
    .where('id', '=', id)
    .where('status', '=', status)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * Records a migration's decision, once: from `running` (or `deploying`, when its new model's
 * deployment served or ended) to `deploying`, `succeeded` or `failed`. True when this call recorded it.
 */
export async function recordMigrationEnd(
  tx: Executor,
  end: {
    id: string;
    from: 'running' | 'deploying';
    status: 'deploying' | 'succeeded' | 'failed';
    toFineTuneId: string | null;
    decision: 'promoted' | 'kept' | null;
    reason: string;
    aliases: MovedAlias[];
  },
): Promise<boolean> {
  const result = await tx
    .updateTable('model_migrations')
    .set({
      status: end.status,
      to_fine_tune_id: end.toFineTuneId,
      decision: end.decision,
      reason: end.reason,
      aliases: JSON.stringify(end.aliases),
      decided_at: sql`now()`,
    })
    .where('id', '=', end.id)
    .where('status', '=', end.from)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** A migration whose request was rejected (its dataset could not be built) ends failed, once. */
export async function failMigrationOfRequest(
  tx: Executor,
  input: { licenseId: string; requestId: string; reason: string },
): Promise<boolean> {
  const result = await tx
    .updateTable('model_migrations')
    .set({ status: 'failed', reason: input.reason, decided_at: sql`now()` })
    .where('license_id', '=', input.licenseId)
    .where('request_id', '=', input.requestId)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** The license's aliases serving `fineTuneId` now. */
export async function aliasNamesOf(db: Executor, licenseId: string, fineTuneId: string): Promise<string[]> {
  return (await aliasesOfFineTunes(db, licenseId, [fineTuneId])).get(fineTuneId) ?? [];
}

/**
 * What a bulk migration takes: the trained, not discarded fine-tunes on `baseModel` of one license (or
 * of every license), oldest first; `activeOnly`: those offered for use.
 */
export async function listMigratableFineTunes(
  db: Executor,
  input: { licenseId?: string; baseModel: string; activeOnly?: boolean; limit?: number },
): Promise<FineTuneRecord[]> {
  let query = db
    .selectFrom('fine_tunes')
    .selectAll()
    .where('base_model', '=', input.baseModel)
    .where('status', '=', 'succeeded')
    .where('available', '=', true)
    .where('fine_tuned_model', 'is not', null)
    .where('discarded_at', 'is', null);
  if (input.licenseId !== undefined) query = query.where('license_id', '=', input.licenseId);
  if (input.activeOnly) query = query.where('active', '=', true);
  const rows = await query
    .orderBy('license_id')
    .orderBy('created_at')
    .orderBy('id')
    .limit(input.limit ?? 1_000)
    .execute();
  return rows.map(toFineTuneRecord);
}
