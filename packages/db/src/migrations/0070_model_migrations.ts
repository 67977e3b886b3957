import { type Kysely, sql } from 'kysely';

/**
 * One-call migration (issue 21.4): a fine-tune re-trained on another base model or provider from the
 * same documents and split, evaluated against it, and its aliases moved when the rule holds. One row per
 * migration: from, the target, the rule, the fine-tune request it queued (`request_id`, the join to the
 * new dataset and fine-tune), the hourly fee of the new model's deployment when the target serves only
 * deployed models (Azure), and, once decided, the new fine-tune, the decision, why, and the aliases
 * moved (`deploying`: promoted, its deployment started, the aliases move when it serves). Without an Idempotency-Key the same fine-tune and target is the same migration (partial unique
 * index); with one, the key is (license, key).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE model_migrations (
      id uuid PRIMARY KEY,
      license_id text NOT NULL REFERENCES licenses(id),
      from_fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      champion_fine_tune_id uuid REFERENCES fine_tunes(id),
      provider text NOT NULL,
      base_model text NOT NULL,
      hyperparameters jsonb NOT NULL,
      promote text NOT NULL CHECK (promote IN ('if-not-worse', 'if-better', 'always', 'never')),
      hosting_credits_per_hour bigint,
      request_id text NOT NULL,
      idempotency_key text,
      actor text NOT NULL,
      status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'deploying', 'succeeded', 'failed')),
      to_fine_tune_id uuid REFERENCES fine_tunes(id),
      decision text CHECK (decision IN ('promoted', 'kept')),
      reason text,
      aliases jsonb NOT NULL DEFAULT '[]',
      created_at timestamptz NOT NULL DEFAULT now(),
      decided_at timestamptz,
      UNIQUE (license_id, request_id),
      CONSTRAINT model_migrations_decided CHECK (
        status = 'running' OR (reason IS NOT NULL AND decided_at IS NOT NULL)),
      CONSTRAINT model_migrations_decision CHECK ((status IN ('deploying', 'succeeded')) = (decision IS NOT NULL))
    );
    CREATE UNIQUE INDEX model_migrations_natural
      ON model_migrations (from_fine_tune_id, provider, base_model) WHERE idempotency_key IS NULL;
    CREATE UNIQUE INDEX model_migrations_idempotency
      ON model_migrations (license_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX model_migrations_license ON model_migrations (license_id, created_at DESC);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE model_migrations;`.execute(db);
}
