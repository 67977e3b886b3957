import { type Kysely, sql } from 'kysely';

/**
 * A provider per license or request (issue 20): the license's provider, and the provider each dataset
 * and fine-tune was made for. NULL everywhere means the deployment's default provider.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE licenses
      ADD COLUMN provider text CHECK (provider IN ('openai', 'azure', 'together'));
    ALTER TABLE datasets
      ADD COLUMN provider text CHECK (provider IN ('openai', 'azure', 'together'));
    ALTER TABLE fine_tunes
      ADD COLUMN provider text CHECK (provider IN ('openai', 'azure', 'together'));
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE fine_tunes DROP COLUMN provider;
    ALTER TABLE datasets DROP COLUMN provider;
    ALTER TABLE licenses DROP COLUMN provider;
  `.execute(db);
}
