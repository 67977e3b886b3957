import { type Kysely, sql } from 'kysely';

/**
 * Retention (issue 20): after training, a dataset's files are deleted at the provider unless its
 * license keeps them; when that happened is recorded on the dataset.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE licenses ADD COLUMN keep_provider_files boolean NOT NULL DEFAULT false;
    ALTER TABLE datasets ADD COLUMN provider_files_deleted_at timestamptz;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE datasets DROP COLUMN provider_files_deleted_at;
    ALTER TABLE licenses DROP COLUMN keep_provider_files;
  `.execute(db);
}
