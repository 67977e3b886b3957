import { type Kysely, sql } from 'kysely';

/**
 * Holds a group of gateway calls in one statement (issue 19.6): the gateway gathers the holds that
 * arrive while one is being written and sends them together, as it already does with settlements.
 * Each call is admitted exactly as `inference_hold` (0010) admits it: held when the license is not
 * overage-blocked and its available balance, after the holds admitted before it in the group, covers
 * the call's worst case; else refused with what was available then. A refused call takes nothing, so a
 * smaller call after it may still fit. Calls with an Idempotency-Key are not grouped (their claim has
 * its own rules): they go through `inference_hold`.
 *
 * Accounts are locked first, license accounts then system stripes, each in id order (as a single hold
 * locks them: license, then stripe, and as the group settlement does), so nothing deadlocks. Then one
 * INSERT writes the admitted calls' `hold-<call>` transfers and one UPDATE per account adds the group's
 * sums to its pending amounts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION inference_hold_many(p_calls uuid[], p_accounts text[], p_stripes text[], p_amounts bigint[],
      p_licenses text[], p_fine_tunes uuid[], p_models text[])
    RETURNS TABLE (o_call uuid, o_outcome text, o_available bigint, o_blocked boolean)
    LANGUAGE plpgsql AS $$
    DECLARE
      c record;
      v_account text;
      v_left bigint;
      v_blocked boolean;
      v_held uuid[] := '{}';
    BEGIN
      PERFORM 1 FROM ledger_accounts a WHERE a.id = ANY (p_accounts) ORDER BY a.id FOR UPDATE;
      PERFORM 1 FROM ledger_accounts a WHERE a.id = ANY (p_stripes) ORDER BY a.id FOR UPDATE;
      -- Admission, in the group's order per license account.
      FOR c IN
        SELECT t.call, t.account, t.amount, a.credits_posted - a.debits_posted - a.debits_pending AS available,
          a.overage_blocked AS blocked
        FROM unnest(p_calls, p_accounts, p_amounts) WITH ORDINALITY AS t(call, account, amount, n)
        LEFT JOIN ledger_accounts a ON a.id = t.account
        ORDER BY t.account, t.n
      LOOP
        IF v_account IS DISTINCT FROM c.account THEN
          v_account := c.account;
          v_left := coalesce(c.available, 0);
          v_blocked := coalesce(c.blocked, false);
        END IF;
        o_call := c.call;
        IF c.available IS NOT NULL AND NOT v_blocked AND v_left >= c.amount THEN
          v_left := v_left - c.amount;
          v_held := v_held || c.call;
          o_outcome := 'held';
          o_available := NULL;
          o_blocked := NULL;
        ELSE
          o_outcome := 'refused';
          o_available := v_left;
          o_blocked := v_blocked;
        END IF;
        RETURN NEXT;
      END LOOP;

      WITH held AS (
        SELECT t.* FROM unnest(p_calls, p_accounts, p_stripes, p_amounts, p_licenses, p_fine_tunes, p_models)
          AS t(call, account, stripe, amount, license, fine_tune, model)
        WHERE t.call = ANY (v_held)
      ), debits AS (
        UPDATE ledger_accounts a SET debits_pending = a.debits_pending + s.amount
        FROM (SELECT account, sum(amount) AS amount FROM held GROUP BY account) s
        WHERE a.id = s.account
      ), credits AS (
        UPDATE ledger_accounts a SET credits_pending = a.credits_pending + s.amount
        FROM (SELECT stripe, sum(amount) AS amount FROM held GROUP BY stripe) s
        WHERE a.id = s.stripe
        RETURNING a.id
      )
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, memo)
      SELECT 'hold-' || h.call, 'hold', h.account, h.stripe, h.amount, h.license, h.fine_tune, h.model,
        'inference: worst case held'
      FROM held h ORDER BY h.call;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION inference_hold_many(uuid[], text[], text[], bigint[], text[], uuid[], text[]);`.execute(
    db,
  );
}
