import { type Kysely, sql } from 'kysely';

/**
 * Training profiles (how and when a license re-trains a configuration from its stored documents) and
 * their versions. A version row is the decision to train: (profile, version) is its key, so two
 * schedulers, or one re-run after a crash, can never start version k twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE training_profiles (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text NOT NULL REFERENCES licenses(id),
      name text NOT NULL,
      settings jsonb NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      last_decision text,
      last_decision_reason text,
      last_decision_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (license_id, name)
    );
    CREATE INDEX training_profiles_enabled ON training_profiles (id) WHERE enabled;
    CREATE TABLE profile_versions (
      profile_id uuid NOT NULL REFERENCES training_profiles(id),
      version integer NOT NULL,
      request_id text NOT NULL,
      trigger text NOT NULL CHECK (trigger IN ('policy', 'manual')),
      documents integer NOT NULL,
      added integer NOT NULL,
      removed integer NOT NULL,
      change_seq bigint NOT NULL,
      estimated_credits bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (profile_id, version)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE profile_versions;
    DROP TABLE training_profiles;
  `.execute(db);
}
