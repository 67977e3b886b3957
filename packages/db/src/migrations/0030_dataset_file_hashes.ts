import { type Kysely, sql } from 'kysely';

/**
 * The SHA-256 of each dataset file as the dataset builder wrote it, so the uploader checks the bytes it
 * reads back from storage (a shared disk or an object store) before the provider gets them. Null for
 * datasets built before this column, whose files are read unchecked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE datasets ADD COLUMN train_sha256 text, ADD COLUMN test_sha256 text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE datasets DROP COLUMN test_sha256, DROP COLUMN train_sha256`.execute(db);
}
