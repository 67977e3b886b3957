import type { ColumnType, Generated } from 'kysely';

/** The `model_migrations` table (issue 21.4, migration 0070): one-call migrations (schema.ts holds the rest). */
export interface ModelMigrationsTable {
  id: string;
  license_id: string;
  from_fine_tune_id: string;
  /** The model the new one is evaluated against: the old one (null when it could not answer). */
  champion_fine_tune_id: string | null;
  provider: string;
  base_model: string;
  hyperparameters: ColumnType<unknown, string, string>;
  promote: 'if-not-worse' | 'if-better' | 'always' | 'never';
  /** The new model's hourly deployment fee when the target serves only deployed models (Azure); else null. */
  hosting_credits_per_hour: ColumnType<
    string | null,
    string | number | bigint | null | undefined,
    string | null
  >;
  /** The fine-tune request it queued (same license). */
  request_id: string;
  idempotency_key: string | null;
  actor: string;
  status: Generated<'running' | 'deploying' | 'succeeded' | 'failed'>;
  to_fine_tune_id: string | null;
  decision: 'promoted' | 'kept' | null;
  reason: string | null;
  /** The aliases moved: `[{name, fromFineTuneId, toFineTuneId}]`. */
  aliases: ColumnType<unknown, string | undefined, string>;
  created_at: Generated<Date>;
  decided_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}
