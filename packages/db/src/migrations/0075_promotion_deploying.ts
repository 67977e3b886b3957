import { type Kysely, sql } from 'kysely';

/**
 * A training-profile version promoted to a model its provider serves only once deployed (Azure) waits
 * for that deployment: `promotion_deploying` is true from the decision until the deployment serves (the
 * alias moves then) or ends first (`kept`), the same deploy-then-promote a migration's `deploying` is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE profile_versions ADD COLUMN promotion_deploying boolean NOT NULL DEFAULT false;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE profile_versions DROP COLUMN promotion_deploying;
  `.execute(db);
}
