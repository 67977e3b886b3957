import { type Kysely, sql } from 'kysely';

/**
 * The ledger's hot statements (reserve, post, void) as PL/pgSQL functions. Each body is the single
 * statement @tuneline/ledger used to send itself; the difference is that PL/pgSQL keeps the plan of
 * that statement for the session, where a statement sent by the driver (an unnamed prepared statement)
 * is parsed and planned again on every call. For these multi-CTE statements planning cost about as
 * much as executing them. Semantics are unchanged: one statement, its own snapshot (READ COMMITTED),
 * inside the caller's transaction or, called alone, its own transaction.
 *
 * Lock order as in operations.ts: the license account before the system stripe; post and void insert
 * their resolution first (ON CONFLICT DO NOTHING: a second resolver of one reservation waits for the
 * first to commit and then inserts nothing) and move the counters only for a row actually inserted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Returns 2 (debit and transfer written), 0 (refused, or the id exists), 1 (system account missing).
    CREATE FUNCTION ledger_reserve(p_id text, p_account text, p_revenue text, p_amount bigint,
      p_license text, p_fine_tune uuid, p_model text) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE n bigint;
    BEGIN
      WITH debited AS (
        UPDATE ledger_accounts SET debits_pending = debits_pending + p_amount
        WHERE id = p_account AND NOT overage_blocked
          AND credits_posted - debits_posted - debits_pending >= p_amount
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers WHERE id = p_id)
        RETURNING id
      ), credited AS (
        UPDATE ledger_accounts SET credits_pending = credits_pending + p_amount
        WHERE id = p_revenue AND EXISTS (SELECT 1 FROM debited)
        RETURNING id
      ), transfer AS (
        INSERT INTO ledger_transfers
          (id, kind, debit_account_id, credit_account_id, amount, license_id, fine_tune_id, model)
        SELECT p_id, 'reserve', p_account, p_revenue, p_amount, p_license, p_fine_tune, p_model
        FROM debited
        RETURNING id
      )
      SELECT (SELECT count(*) FROM transfer) + (SELECT count(*) FROM credited) INTO n;
      RETURN n;
    END $$;

    -- No row: no reservation. o_posted NULL: nothing inserted (resolved already, by this or another).
    CREATE FUNCTION ledger_post(p_reserve_id text, p_id text, p_overage_id text, p_amount bigint,
      p_fine_tune uuid, p_model text, p_tokens bigint, OUT o_reserved bigint, OUT o_posted bigint)
    RETURNS SETOF record LANGUAGE plpgsql AS $$
    BEGIN
      RETURN QUERY
      WITH r AS (
        SELECT id, amount, debit_account_id, credit_account_id, license_id
        FROM ledger_transfers WHERE id = p_reserve_id
      ), post AS (
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
          license_id, fine_tune_id, model, tokens)
        SELECT p_id, 'post', r.debit_account_id, r.credit_account_id, least(p_amount, r.amount),
          r.id, r.license_id, p_fine_tune, p_model, p_tokens
        FROM r
        ON CONFLICT DO NOTHING
        RETURNING amount
      ), debited AS (
        UPDATE ledger_accounts a
        SET debits_pending = a.debits_pending - r.amount,
            debits_posted = a.debits_posted + p_amount,
            overage_blocked = a.overage_blocked
              OR a.credits_posted - a.debits_posted - p_amount - (a.debits_pending - r.amount) < 0
        FROM r, post
        WHERE a.id = r.debit_account_id
        RETURNING a.credits_posted - a.debits_posted - a.debits_pending AS available
      ), credited AS (
        UPDATE ledger_accounts a
        SET credits_pending = a.credits_pending - r.amount,
            credits_posted = a.credits_posted + p_amount
        FROM r, debited
        WHERE a.id = r.credit_account_id
        RETURNING 1
      ), overage AS (
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount,
          license_id, fine_tune_id, model, tokens, memo)
        SELECT p_overage_id, 'overage', r.debit_account_id, r.credit_account_id, p_amount - r.amount,
          r.license_id, p_fine_tune, p_model, p_tokens,
          CASE WHEN d.available < 0 THEN 'uncovered ' || least(-d.available, p_amount - r.amount)
               ELSE 'covered' END
        FROM r, debited d WHERE p_amount > r.amount
        RETURNING 1
      )
      -- (credited and overage run whether read or not: data-modifying CTEs always run to completion.)
      SELECT r.amount, (SELECT p.amount FROM post p) FROM r;
    END $$;

    -- No row: no reservation. o_released NULL: nothing inserted (resolved already).
    CREATE FUNCTION ledger_void(p_reserve_id text, p_id text, p_fine_tune uuid,
      OUT o_reserved bigint, OUT o_released bigint)
    RETURNS SETOF record LANGUAGE plpgsql AS $$
    BEGIN
      RETURN QUERY
      WITH r AS (
        SELECT id, amount, debit_account_id, credit_account_id, license_id, model
        FROM ledger_transfers WHERE id = p_reserve_id
      ), released AS (
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
          license_id, fine_tune_id, model)
        SELECT p_id, 'void', r.debit_account_id, r.credit_account_id, r.amount, r.id, r.license_id,
          p_fine_tune, r.model
        FROM r
        ON CONFLICT DO NOTHING
        RETURNING amount
      ), debited AS (
        UPDATE ledger_accounts a SET debits_pending = a.debits_pending - v.amount
        FROM r, released v WHERE a.id = r.debit_account_id
        RETURNING v.amount
      ), credited AS (
        UPDATE ledger_accounts a SET credits_pending = a.credits_pending - d.amount
        FROM r, debited d WHERE a.id = r.credit_account_id
        RETURNING d.amount
      )
      SELECT r.amount, (SELECT c.amount FROM credited c) FROM r;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP FUNCTION ledger_void(text, text, uuid);
    DROP FUNCTION ledger_post(text, text, text, bigint, uuid, text, bigint);
    DROP FUNCTION ledger_reserve(text, text, text, bigint, text, uuid, text);
  `.execute(db);
}
