import { type Kysely, sql } from 'kysely';

/**
 * Settles a group of gateway calls in one statement (one round trip, one commit): the gateway's meter
 * gathers the settlements that arrive while one is being written and sends them together (group
 * commit). Each element is exactly `inference_settle` (0010), so a call already settled is `already`
 * and a replay changes nothing; an error anywhere rolls the whole group back and the meter settles its
 * calls one by one. Calls are taken in license-account order, so two groups lock license rows in the
 * same order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION inference_settle_many(p_calls uuid[], p_amounts bigint[], p_prompt integer[],
      p_completion integer[], p_responses jsonb[])
    RETURNS TABLE (o_call uuid, o_outcome text, o_held bigint, o_charged bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      i integer;
      r record;
    BEGIN
      FOR i IN
        SELECT a.i FROM generate_subscripts(p_calls, 1) AS a(i)
        LEFT JOIN ledger_transfers h ON h.id = 'hold-' || p_calls[a.i]
        ORDER BY h.debit_account_id, a.i
      LOOP
        SELECT * INTO r FROM inference_settle(p_calls[i], p_amounts[i], p_prompt[i], p_completion[i], p_responses[i]);
        o_call := p_calls[i];
        o_outcome := r.o_outcome;
        o_held := r.o_held;
        o_charged := r.o_charged;
        RETURN NEXT;
      END LOOP;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION inference_settle_many(uuid[], bigint[], integer[], integer[], jsonb[]);`.execute(
    db,
  );
}
