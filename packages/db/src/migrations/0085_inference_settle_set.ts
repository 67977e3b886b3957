import { type Kysely, sql } from 'kysely';

/**
 * The gateway's group settlement as set-based SQL (issue 19.6: "batch the ledger writes: the holds stay
 * per call, the postings grouped"). 0011 looped over the group and ran the whole `inference_settle` per
 * call: about ten statements and two account-row updates each, which cost Postgres more CPU than the
 * hold itself. Now the common case (the call's hold exists and nothing has resolved it yet) is settled
 * for the whole group at once:
 * - one INSERT of the calls' `usage-<call>` transfers (`ON CONFLICT DO NOTHING`: the unique id and the
 *   one-resolution index on `pending_id` still decide who settles a call, exactly as before);
 * - one UPDATE per account the group touches, with the group's sums (a license row and a system stripe
 *   are written once per group instead of once per call);
 * - one INSERT of the `inference_usage` rows, one UPDATE of kept Idempotency-Key answers, one of deferred
 *   usages.
 * Every call whose usage this did not post (no hold, already settled or released, a hold that expired
 * before its usage came, the same call twice in the group) goes through 0011's loop, renamed
 * `inference_settle_each`: `inference_settle` one by one, which answers for it as before. The per-call rows and the outcomes are the same as 0011's; the one
 * difference is the overage rule, judged on the account's balance after the whole group (the order of
 * a group's calls was never defined, so this is the order that posts the group's releases first).
 *
 * Accounts are locked first, license accounts then system stripes, each in id order, as a hold locks
 * them (license, then stripe): two groups, or a group and holds, cannot deadlock.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER FUNCTION inference_settle_many(uuid[], bigint[], integer[], integer[], jsonb[])
      RENAME TO inference_settle_each;

    CREATE FUNCTION inference_settle_many(p_calls uuid[], p_amounts bigint[], p_prompt integer[],
      p_completion integer[], p_responses jsonb[])
    RETURNS TABLE (o_call uuid, o_outcome text, o_held bigint, o_charged bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      v_calls uuid[];
      v_held bigint[];
      v_charged bigint[];
      l_calls uuid[];
      l_amounts bigint[];
      l_prompt integer[];
      l_completion integer[];
      l_responses jsonb[];
    BEGIN
      PERFORM 1 FROM ledger_accounts a
      WHERE a.id IN (SELECT h.debit_account_id FROM ledger_transfers h
                     WHERE h.id IN (SELECT 'hold-' || c FROM unnest(p_calls) c))
      ORDER BY a.id FOR UPDATE;
      PERFORM 1 FROM ledger_accounts a
      WHERE a.id IN (SELECT h.credit_account_id FROM ledger_transfers h
                     WHERE h.id IN (SELECT 'hold-' || c FROM unnest(p_calls) c))
      ORDER BY a.id FOR UPDATE;

      WITH input AS (
        SELECT DISTINCT ON (t.call) t.call, t.amount, t.prompt, t.completion, t.response
        FROM unnest(p_calls, p_amounts, p_prompt, p_completion, p_responses)
          WITH ORDINALITY AS t(call, amount, prompt, completion, response, n)
        ORDER BY t.call, t.n
      ), held AS (
        SELECT inp.*, h.id AS hold_id, h.amount AS held, h.debit_account_id, h.credit_account_id,
          h.license_id, h.fine_tune_id, h.model
        FROM input inp JOIN ledger_transfers h ON h.id = 'hold-' || inp.call
      ), posted AS (
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
          license_id, fine_tune_id, model, tokens, memo)
        SELECT 'usage-' || h.call, 'usage', h.debit_account_id, h.credit_account_id, h.amount, h.hold_id,
          h.license_id, h.fine_tune_id, h.model, h.prompt::bigint + h.completion,
          'inference: ' || h.prompt || ' prompt + ' || h.completion || ' completion tokens'
            || CASE WHEN h.amount > h.held THEN ', ' || (h.amount - h.held) || ' over the hold' ELSE '' END
        FROM held h
        ORDER BY h.call
        ON CONFLICT DO NOTHING
        RETURNING pending_id
      ), settled AS (
        SELECT h.* FROM held h JOIN posted p ON p.pending_id = h.hold_id
      ), debits AS (
        UPDATE ledger_accounts a
        SET debits_pending = a.debits_pending - s.held,
            debits_posted = a.debits_posted + s.charged,
            overage_blocked = a.overage_blocked
              OR a.credits_posted - a.debits_posted - s.charged - (a.debits_pending - s.held) < 0
        FROM (SELECT debit_account_id AS id, sum(held) AS held, sum(amount) AS charged
              FROM settled GROUP BY debit_account_id) s
        WHERE a.id = s.id
      ), credits AS (
        UPDATE ledger_accounts a
        SET credits_pending = a.credits_pending - s.held, credits_posted = a.credits_posted + s.charged
        FROM (SELECT credit_account_id AS id, sum(held) AS held, sum(amount) AS charged
              FROM settled GROUP BY credit_account_id) s
        WHERE a.id = s.id
      ), usage AS (
        INSERT INTO inference_usage (id, license_id, fine_tune_id, prompt_tokens, completion_tokens, credits)
        SELECT s.call, s.license_id, s.fine_tune_id, s.prompt, s.completion, s.amount FROM settled s
      ), kept AS (
        UPDATE inference_idempotency k SET response = s.response
        FROM settled s WHERE k.call_id = s.call AND s.response IS NOT NULL
      ), applied AS (
        UPDATE inference_pending_usage u SET applied_at = now()
        FROM settled s WHERE u.call_id = s.call AND u.applied_at IS NULL
      )
      SELECT array_agg(s.call), array_agg(s.held), array_agg(s.amount)
      INTO v_calls, v_held, v_charged
      FROM settled s;

      RETURN QUERY SELECT t.call, 'settled'::text, t.held, t.charged
        FROM unnest(v_calls, v_held, v_charged) AS t(call, held, charged);

      -- The rest, one by one: 0011's loop, kept under the name inference_settle_each.
      SELECT array_agg(t.call ORDER BY t.n), array_agg(t.amount ORDER BY t.n), array_agg(t.prompt ORDER BY t.n),
        array_agg(t.completion ORDER BY t.n), array_agg(t.response ORDER BY t.n)
      INTO l_calls, l_amounts, l_prompt, l_completion, l_responses
      FROM unnest(p_calls, p_amounts, p_prompt, p_completion, p_responses)
        WITH ORDINALITY AS t(call, amount, prompt, completion, response, n)
      WHERE v_calls IS NULL OR NOT (t.call = ANY (v_calls));
      IF l_calls IS NOT NULL THEN
        RETURN QUERY SELECT * FROM inference_settle_each(l_calls, l_amounts, l_prompt, l_completion, l_responses);
      END IF;
    END $$;
  `.execute(db);
}

/** Back to 0011's loop under its own name. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP FUNCTION inference_settle_many(uuid[], bigint[], integer[], integer[], jsonb[]);
    ALTER FUNCTION inference_settle_each(uuid[], bigint[], integer[], integer[], jsonb[])
      RENAME TO inference_settle_many;
  `.execute(db);
}
