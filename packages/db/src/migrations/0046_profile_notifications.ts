import { type Kysely, sql } from 'kysely';

/**
 * Notifications about a training profile rather than a fine-tune (issue 22.2: a re-train refused by the
 * monthly budget). Such a row names the profile and the version it is about instead of a fine-tune,
 * carries its own correlation id and what it reports (`detail`), and is unique per (profile, version,
 * kind, recipient): the same exactly-once claim a fine-tune's outcome e-mail has per (fine-tune, kind,
 * recipient), which stays as it was.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE notifications
      ALTER COLUMN fine_tune_id DROP NOT NULL,
      ADD COLUMN profile_id uuid REFERENCES training_profiles(id),
      ADD COLUMN profile_version integer,
      ADD COLUMN correlation_id text,
      ADD COLUMN detail text,
      ADD CONSTRAINT notifications_subject CHECK (
        (fine_tune_id IS NOT NULL AND profile_id IS NULL AND profile_version IS NULL)
        OR (fine_tune_id IS NULL AND profile_id IS NOT NULL AND profile_version IS NOT NULL
          AND correlation_id IS NOT NULL));
    CREATE UNIQUE INDEX notifications_profile_once
      ON notifications (profile_id, profile_version, kind, recipient) WHERE profile_id IS NOT NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DELETE FROM notifications WHERE fine_tune_id IS NULL;
    DROP INDEX notifications_profile_once;
    ALTER TABLE notifications
      DROP CONSTRAINT notifications_subject,
      DROP COLUMN detail,
      DROP COLUMN correlation_id,
      DROP COLUMN profile_version,
      DROP COLUMN profile_id,
      ALTER COLUMN fine_tune_id SET NOT NULL;
  `.execute(db);
}
