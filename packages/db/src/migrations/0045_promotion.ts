import { type Kysely, sql } from 'kysely';

/**
 * Champion and challenger (issue 22.4): each training-profile version records what became of its
 * model, once. `promotion` is null until decided: `promoted` (the alias serves it, or it was activated),
 * `kept` (the champion stays, with the reason), `manual` (the policy leaves it to a person). The
 * evaluator decides in the transaction that ends the evaluation, claiming the still-undecided row, so a
 * re-run, a second message or a crash after the commit never decides (nor moves the alias) twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE profile_versions
      ADD COLUMN fine_tune_id uuid REFERENCES fine_tunes(id),
      ADD COLUMN champion_fine_tune_id uuid REFERENCES fine_tunes(id),
      ADD COLUMN promotion text CHECK (promotion IN ('promoted', 'kept', 'manual')),
      ADD COLUMN promotion_rule text,
      ADD COLUMN promotion_reason text,
      ADD COLUMN promotion_actor text,
      ADD COLUMN promotion_alias text,
      ADD COLUMN promotion_at timestamptz,
      ADD CONSTRAINT profile_versions_promotion_complete CHECK (
        promotion IS NULL OR (fine_tune_id IS NOT NULL AND promotion_reason IS NOT NULL
          AND promotion_actor IS NOT NULL AND promotion_at IS NOT NULL));
    -- From a fine-tune's request to its version (the evaluator, the e-mail, the evaluation view).
    CREATE INDEX profile_versions_request ON profile_versions (request_id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX profile_versions_request;
    ALTER TABLE profile_versions
      DROP CONSTRAINT profile_versions_promotion_complete,
      DROP COLUMN promotion_at,
      DROP COLUMN promotion_alias,
      DROP COLUMN promotion_actor,
      DROP COLUMN promotion_reason,
      DROP COLUMN promotion_rule,
      DROP COLUMN promotion,
      DROP COLUMN champion_fine_tune_id,
      DROP COLUMN fine_tune_id;
  `.execute(db);
}
