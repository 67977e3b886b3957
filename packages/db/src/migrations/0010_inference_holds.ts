import { type Kysely, sql } from 'kysely';

/**
 * Inference gateway money (issue 16.3, 19.3, 19.4):
 *
 * - Two transfer kinds: `hold` (a pending transfer license → system-inference stripe, the worst case of
 *   one call, taken before the provider is called) and `release` (gives a hold back whole: the provider
 *   never answered). `usage` now may resolve a hold (pending_id = the hold): it posts what the provider
 *   reported and releases the rest. Legacy `usage` rows (posted directly, no hold) stay valid.
 * - `system-inference` is striped over 64 rows like grants and revenue: every call of every tenant
 *   updated that one row, and at concurrency 32 most pooled connections queued on its lock.
 * - `inference_idempotency`: one row per (license, Idempotency-Key), claimed with the hold, holding the
 *   first answer once the call is settled.
 * - `inference_pending_usage`: a call whose settlement failed after the provider answered; written with
 *   an outbox message in one transaction and applied exactly once by billing (the hold resolves once).
 * - `inference_hold`, `inference_settle`, `inference_release`: each a single statement for the client
 *   (one round trip, its own transaction when called alone), like the ledger functions of 0006. Lock
 *   order as everywhere in the ledger: the license account before the system stripe.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release'));
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_check1;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_resolves_check
      CHECK (CASE WHEN kind IN ('post', 'void', 'release') THEN pending_id IS NOT NULL
                  WHEN kind = 'usage' THEN true
                  ELSE pending_id IS NULL END);

    INSERT INTO ledger_accounts (id, kind)
      SELECT 'system-inference-' || s, 'inference' FROM generate_series(0, 63) AS s;

    CREATE TABLE inference_idempotency (
      license_id text NOT NULL,
      key text NOT NULL,
      call_id uuid NOT NULL UNIQUE,
      request_hash text NOT NULL,
      -- The first answer, stored when the call is settled; NULL while the call is in flight.
      response jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (license_id, key)
    );

    CREATE TABLE inference_pending_usage (
      call_id uuid PRIMARY KEY,
      prompt_tokens integer NOT NULL,
      completion_tokens integer NOT NULL,
      credits bigint NOT NULL CHECK (credits >= 0),
      response jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      applied_at timestamptz
    );
    CREATE INDEX inference_pending_usage_waiting ON inference_pending_usage (created_at) WHERE applied_at IS NULL;

    -- o_outcome: 'held'; 'refused' (o_available, o_blocked say why); 'replay' (the key was claimed
    -- before: o_call, o_request_hash, o_response, NULL while that call is in flight).
    CREATE FUNCTION inference_hold(p_call uuid, p_account text, p_stripe text, p_amount bigint,
      p_license text, p_fine_tune uuid, p_model text, p_key text, p_request_hash text,
      OUT o_outcome text, OUT o_available bigint, OUT o_blocked boolean, OUT o_call uuid,
      OUT o_request_hash text, OUT o_response jsonb)
    LANGUAGE plpgsql AS $$
    BEGIN
      IF p_key IS NOT NULL THEN
        INSERT INTO inference_idempotency (license_id, key, call_id, request_hash)
        VALUES (p_license, p_key, p_call, p_request_hash)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
          SELECT 'replay', i.call_id, i.request_hash, i.response
          INTO o_outcome, o_call, o_request_hash, o_response
          FROM inference_idempotency i WHERE i.license_id = p_license AND i.key = p_key;
          IF FOUND THEN RETURN; END IF;
          -- The first claim was given back between our insert and our read: claim it now.
          INSERT INTO inference_idempotency (license_id, key, call_id, request_hash)
          VALUES (p_license, p_key, p_call, p_request_hash);
        END IF;
      END IF;
      UPDATE ledger_accounts SET debits_pending = debits_pending + p_amount
      WHERE id = p_account AND NOT overage_blocked
        AND credits_posted - debits_posted - debits_pending >= p_amount;
      IF NOT FOUND THEN
        SELECT credits_posted - debits_posted - debits_pending, overage_blocked
        INTO o_available, o_blocked FROM ledger_accounts WHERE id = p_account;
        o_outcome := 'refused';
        o_available := coalesce(o_available, 0);
        o_blocked := coalesce(o_blocked, false);
        IF p_key IS NOT NULL THEN
          DELETE FROM inference_idempotency WHERE license_id = p_license AND key = p_key AND call_id = p_call;
        END IF;
        RETURN;
      END IF;
      UPDATE ledger_accounts SET credits_pending = credits_pending + p_amount WHERE id = p_stripe;
      IF NOT FOUND THEN RAISE EXCEPTION 'inference_hold: system account % is missing', p_stripe; END IF;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, memo)
      VALUES ('hold-' || p_call, 'hold', p_account, p_stripe, p_amount, p_license, p_fine_tune, p_model,
        'inference: worst case held');
      o_outcome := 'held';
      o_call := p_call;
    END $$;

    -- o_outcome: 'settled' (this call posted it); 'already' (posted before: o_charged is that charge);
    -- 'released' (the hold was given back); 'no_hold'.
    CREATE FUNCTION inference_settle(p_call uuid, p_amount bigint, p_prompt integer, p_completion integer,
      p_response jsonb, OUT o_outcome text, OUT o_held bigint, OUT o_charged bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      h ledger_transfers%ROWTYPE;
      existing ledger_transfers%ROWTYPE;
    BEGIN
      SELECT * INTO h FROM ledger_transfers WHERE id = 'hold-' || p_call;
      IF NOT FOUND THEN o_outcome := 'no_hold'; RETURN; END IF;
      o_held := h.amount;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
        license_id, fine_tune_id, model, tokens, memo)
      VALUES ('usage-' || p_call, 'usage', h.debit_account_id, h.credit_account_id, p_amount, h.id,
        h.license_id, h.fine_tune_id, h.model, p_prompt::bigint + p_completion,
        'inference: ' || p_prompt || ' prompt + ' || p_completion || ' completion tokens'
          || CASE WHEN p_amount > h.amount THEN ', ' || (p_amount - h.amount) || ' over the hold' ELSE '' END)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        SELECT * INTO existing FROM ledger_transfers WHERE pending_id = h.id;
        o_outcome := CASE WHEN existing.kind = 'usage' THEN 'already' ELSE 'released' END;
        o_charged := CASE WHEN existing.kind = 'usage' THEN existing.amount ELSE 0 END;
        RETURN;
      END IF;
      -- The charge is what the provider reported; above the hold it may take the balance below zero,
      -- which blocks the license (new holds and reservations) until a top-up covers it.
      UPDATE ledger_accounts
      SET debits_pending = debits_pending - h.amount,
          debits_posted = debits_posted + p_amount,
          overage_blocked = overage_blocked
            OR credits_posted - debits_posted - p_amount - (debits_pending - h.amount) < 0
      WHERE id = h.debit_account_id;
      UPDATE ledger_accounts
      SET credits_pending = credits_pending - h.amount, credits_posted = credits_posted + p_amount
      WHERE id = h.credit_account_id;
      INSERT INTO inference_usage (id, license_id, fine_tune_id, prompt_tokens, completion_tokens, credits)
      VALUES (p_call, h.license_id, h.fine_tune_id, p_prompt, p_completion, p_amount);
      IF p_response IS NOT NULL THEN
        UPDATE inference_idempotency SET response = p_response WHERE call_id = p_call;
      END IF;
      UPDATE inference_pending_usage SET applied_at = now() WHERE call_id = p_call AND applied_at IS NULL;
      o_outcome := 'settled';
      o_charged := p_amount;
    END $$;

    -- o_outcome: 'released'; 'already' (released before); 'settled' (posted: nothing to give back); 'no_hold'.
    CREATE FUNCTION inference_release(p_call uuid, OUT o_outcome text, OUT o_held bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      h ledger_transfers%ROWTYPE;
      existing ledger_transfers%ROWTYPE;
    BEGIN
      SELECT * INTO h FROM ledger_transfers WHERE id = 'hold-' || p_call;
      IF NOT FOUND THEN o_outcome := 'no_hold'; RETURN; END IF;
      o_held := h.amount;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
        license_id, fine_tune_id, model, memo)
      VALUES ('release-' || p_call, 'release', h.debit_account_id, h.credit_account_id, h.amount, h.id,
        h.license_id, h.fine_tune_id, h.model, 'inference: no answer, hold released')
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        SELECT * INTO existing FROM ledger_transfers WHERE pending_id = h.id;
        o_outcome := CASE WHEN existing.kind = 'release' THEN 'already' ELSE 'settled' END;
        RETURN;
      END IF;
      UPDATE ledger_accounts SET debits_pending = debits_pending - h.amount WHERE id = h.debit_account_id;
      UPDATE ledger_accounts SET credits_pending = credits_pending - h.amount WHERE id = h.credit_account_id;
      -- A key whose call got no answer is free again: a retry with it calls the provider.
      DELETE FROM inference_idempotency WHERE call_id = p_call;
      o_outcome := 'released';
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP FUNCTION inference_release(uuid);
    DROP FUNCTION inference_settle(uuid, bigint, integer, integer, jsonb);
    DROP FUNCTION inference_hold(uuid, text, text, bigint, text, uuid, text, text, text);
    DROP TABLE inference_pending_usage, inference_idempotency;
  `.execute(db);
}
