import { type Kysely, sql } from 'kysely';

/**
 * Lifecycle warnings (issue 21.3): one row per (license, base model, event, threshold) — the unique key
 * is what makes each warning go out once, across sweeps, replicas and restarts. A row is claimed
 * (`sending`) before the e-mail and marked `sent` after; a claim older than ten minutes (a crash) is
 * taken again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE lifecycle_warnings (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text NOT NULL REFERENCES licenses(id),
      base_model text NOT NULL,
      event text NOT NULL CHECK (event IN ('training_closes', 'shutdown')),
      event_date text NOT NULL CHECK (event_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
      threshold_days integer NOT NULL CHECK (threshold_days > 0),
      recipients text[] NOT NULL,
      models text[] NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      claimed_at timestamptz,
      sent_at timestamptz,
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (license_id, base_model, event, threshold_days)
    );
    CREATE INDEX lifecycle_warnings_open ON lifecycle_warnings (created_at) WHERE status IN ('pending', 'sending');
    CREATE INDEX fine_tunes_base_model ON fine_tunes (base_model, license_id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX fine_tunes_base_model;
    DROP TABLE lifecycle_warnings;
  `.execute(db);
}
