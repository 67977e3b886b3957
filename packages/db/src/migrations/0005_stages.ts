import { type Kysely, sql } from 'kysely';

/**
 * What the upload, trainer and poller stages need beyond 0001: the poller's back-off counter and
 * last poll time, and indexes for the recovery sweeps and webhook look-ups.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE fine_tunes
      ADD COLUMN unchanged_polls integer NOT NULL DEFAULT 0,
      ADD COLUMN last_polled_at timestamptz;
    CREATE INDEX fine_tunes_dataset ON fine_tunes (dataset_id);
    CREATE INDEX datasets_upload_waiting ON datasets (created_at) WHERE status IN ('ready', 'uploading');
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX datasets_upload_waiting;
    DROP INDEX fine_tunes_dataset;
    ALTER TABLE fine_tunes DROP COLUMN last_polled_at, DROP COLUMN unchanged_polls;
  `.execute(db);
}
