import { type Kysely, sql } from 'kysely';

/**
 * The gateway's model resolution as a function (issue 21.1): the license's active fine-tune named
 * `p_model`, else the one its alias `p_model` points at. PL/pgSQL caches the plans of its statements,
 * so a call is two index lookups and a primary-key fetch without planning a join per call (measured in
 * bench/aliases.bench.ts). Returns the fine_tunes row as a composite (it follows later columns).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION resolve_active_model(p_license text, p_model text)
    RETURNS TABLE (ft fine_tunes, via_alias text)
    LANGUAGE plpgsql STABLE AS $$
    DECLARE
      v_id uuid;
      v_alias text;
    BEGIN
      SELECT f.id INTO v_id FROM fine_tunes f
       WHERE f.license_id = p_license AND f.fine_tuned_model = p_model AND f.active
       LIMIT 1;
      IF v_id IS NULL THEN
        SELECT a.fine_tune_id, a.name INTO v_id, v_alias FROM model_aliases a
         WHERE a.license_id = p_license AND a.name = p_model;
      END IF;
      IF v_id IS NULL THEN
        RETURN;
      END IF;
      RETURN QUERY SELECT f, v_alias FROM fine_tunes f
       WHERE f.id = v_id AND f.license_id = p_license AND f.active;
    END
    $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION resolve_active_model(text, text);`.execute(db);
}
