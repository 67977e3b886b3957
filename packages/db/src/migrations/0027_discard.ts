import { type Kysely, sql } from 'kysely';

/** A discarded fine-tune (issue 20): the model is deleted at the provider, the row kept for the ledger. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE fine_tunes ADD COLUMN discarded_at timestamptz`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE fine_tunes DROP COLUMN discarded_at`.execute(db);
}
