import { type Kysely, sql } from 'kysely';

/**
 * Dead letters (issue 15.5): the recovery sweep counts, per queued job, how often it found the job
 * failed for good and re-enqueued it. Over the cap (RECOVERY_MAX_RETRIES) the row is dead-lettered: the
 * sweep leaves it alone, it shows with its reason in the API and the hub, and an admin call retries it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE dead_letters (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      queue text NOT NULL,
      job_id text NOT NULL,
      subject_kind text NOT NULL CHECK (subject_kind IN ('request', 'dataset', 'fine_tune', 'notification')),
      subject_id text NOT NULL,
      license_id text,
      payload jsonb NOT NULL,
      status text NOT NULL DEFAULT 'retrying' CHECK (status IN ('retrying', 'dead_lettered')),
      recoveries integer NOT NULL DEFAULT 0,
      reason text,
      dead_lettered_at timestamptz,
      admin_retries integer NOT NULL DEFAULT 0,
      retried_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (queue, job_id)
    );
    CREATE INDEX dead_letters_open ON dead_letters (license_id, dead_lettered_at DESC)
      WHERE status = 'dead_lettered';
    CREATE INDEX dead_letters_subject ON dead_letters (subject_id) WHERE status = 'dead_lettered';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE dead_letters`.execute(db);
}
