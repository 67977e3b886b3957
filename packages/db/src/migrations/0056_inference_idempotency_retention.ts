import { type Kysely, sql } from 'kysely';

/**
 * Idempotency-Keys are kept for a retention (GATEWAY_IDEMPOTENCY_RETENTION_HOURS, 24 h by default)
 * and then forgotten by the API's sweep, oldest first: this index is how it finds them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX inference_idempotency_created ON inference_idempotency (created_at);`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX inference_idempotency_created;`.execute(db);
}
