import { type Kysely, sql } from 'kysely';

/**
 * Lifecycle dates are per base model and provider (issue 21.2): OpenAI's shutdown is not Azure's. A
 * warning is now once per (license, base model, provider, event, threshold). Rows written before were
 * judged by the model-wide dates, which were OpenAI's: they are OpenAI's warnings.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE lifecycle_warnings ADD COLUMN provider text NOT NULL DEFAULT 'openai';
    ALTER TABLE lifecycle_warnings ALTER COLUMN provider DROP DEFAULT;
    DO $$
    DECLARE c text;
    BEGIN
      SELECT conname INTO c FROM pg_constraint
       WHERE conrelid = 'lifecycle_warnings'::regclass AND contype = 'u';
      EXECUTE format('ALTER TABLE lifecycle_warnings DROP CONSTRAINT %I', c);
    END
    $$;
    ALTER TABLE lifecycle_warnings ADD CONSTRAINT lifecycle_warnings_once
      UNIQUE (license_id, base_model, provider, event, threshold_days);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DELETE FROM lifecycle_warnings WHERE provider <> 'openai';
    ALTER TABLE lifecycle_warnings DROP CONSTRAINT lifecycle_warnings_once;
    ALTER TABLE lifecycle_warnings DROP COLUMN provider;
    ALTER TABLE lifecycle_warnings ADD UNIQUE (license_id, base_model, event, threshold_days);
  `.execute(db);
}
