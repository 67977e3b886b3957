import { type Kysely, sql } from 'kysely';

/**
 * Since 0060 an evaluation answer carries no transfer of its own (the run is charged once), so
 * `transfer_id` is NULL on every new row; its UNIQUE constraint still indexed each of them. A partial
 * unique index keeps the rule for the rows charged per answer before and costs new rows nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE evaluation_answers DROP CONSTRAINT evaluation_answers_transfer_id_key;
    CREATE UNIQUE INDEX evaluation_answers_transfer_id_key ON evaluation_answers (transfer_id)
      WHERE transfer_id IS NOT NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX evaluation_answers_transfer_id_key;
    ALTER TABLE evaluation_answers ADD CONSTRAINT evaluation_answers_transfer_id_key UNIQUE (transfer_id);
  `.execute(db);
}
