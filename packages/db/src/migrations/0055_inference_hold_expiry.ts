import { type Kysely, sql } from 'kysely';

/**
 * Holds that nobody settles expire (issue 19, after the benchmark). A gateway process that dies
 * between a call's hold and its settlement left the worst case held forever; the API's sweep now
 * releases such a hold once it is older than a bound (GATEWAY_HOLD_EXPIRY_SECONDS):
 *
 * - `inference_release_hold(call, memo)`: the release of 0010 with its memo as a parameter;
 *   `inference_release` is that with its old memo, `inference_expire_hold` with the expiry's memo,
 *   and records the call in `inference_expired_holds` in the same statement. The release is the
 *   ordinary `release-<callId>` transfer, so it is exactly once (one resolution per hold) against a
 *   settle, a release or another sweep racing it, and the auditor's rules for releases hold.
 * - `inference_hold_sweep`: how far (ledger_transfers.seq) the sweep has looked, so a sweep reads only
 *   the transfers written since the last one, never the whole ledger, and needs no index of its own.
 * - `inference_settle` (same signature): 0010's, renamed `inference_settle_held`, plus this: a
 *   settlement that arrives after its hold expired (a deferred usage applied late, a process that came
 *   back) is still charged, as a usage posted directly (`usage-<callId>`, no pending leg, license → the
 *   hold's stripe) with the overage rule: expiry only ever gives credits back early, it never loses a
 *   charge. A settle after an ordinary release (no answer) is still `released` and charges nothing.
 *   (The idempotency answer is not stored: the expiry freed the key.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE inference_expired_holds (
      call_id uuid PRIMARY KEY,
      license_id text NOT NULL,
      held bigint NOT NULL,
      hold_created_at timestamptz NOT NULL,
      expired_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE inference_hold_sweep (
      id smallint PRIMARY KEY CHECK (id = 1),
      swept_seq bigint NOT NULL DEFAULT 0,
      swept_at timestamptz
    );
    INSERT INTO inference_hold_sweep (id) VALUES (1);

    CREATE OR REPLACE FUNCTION inference_release_hold(p_call uuid, p_memo text, OUT o_outcome text, OUT o_held bigint)
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
        h.license_id, h.fine_tune_id, h.model, p_memo)
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

    CREATE OR REPLACE FUNCTION inference_release(p_call uuid, OUT o_outcome text, OUT o_held bigint)
    LANGUAGE sql AS $$
      SELECT r.o_outcome, r.o_held FROM inference_release_hold(p_call, 'inference: no answer, hold released') r
    $$;

    -- o_outcome as inference_release's; 'released' only for the call that expired it (then recorded).
    CREATE FUNCTION inference_expire_hold(p_call uuid, p_after_seconds integer,
      OUT o_outcome text, OUT o_held bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      r record;
    BEGIN
      SELECT * INTO r FROM inference_release_hold(p_call,
        'inference: hold expired, not settled within ' || p_after_seconds || ' s; released');
      o_outcome := r.o_outcome;
      o_held := r.o_held;
      IF o_outcome = 'released' THEN
        INSERT INTO inference_expired_holds (call_id, license_id, held, hold_created_at)
        SELECT p_call, h.license_id, h.amount, h.created_at FROM ledger_transfers h WHERE h.id = 'hold-' || p_call;
      END IF;
    END $$;

    -- 0010's settlement stays as it was, under another name; inference_settle (what the gateway, billing
    -- and inference_settle_many call) is it plus the late charge of a usage whose hold expired.
    ALTER FUNCTION inference_settle(uuid, bigint, integer, integer, jsonb) RENAME TO inference_settle_held;

    CREATE FUNCTION inference_settle(p_call uuid, p_amount bigint, p_prompt integer, p_completion integer,
      p_response jsonb, OUT o_outcome text, OUT o_held bigint, OUT o_charged bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      r record;
      h ledger_transfers%ROWTYPE;
    BEGIN
      SELECT * INTO r FROM inference_settle_held(p_call, p_amount, p_prompt, p_completion, p_response);
      o_outcome := r.o_outcome;
      o_held := r.o_held;
      o_charged := r.o_charged;
      IF o_outcome <> 'released' OR NOT EXISTS (SELECT 1 FROM inference_expired_holds e WHERE e.call_id = p_call)
      THEN
        RETURN;
      END IF;
      -- The hold expired before this usage came: charge it directly, once (the usage id is unique).
      SELECT * INTO h FROM ledger_transfers WHERE id = 'hold-' || p_call;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount,
        license_id, fine_tune_id, model, tokens, memo)
      VALUES ('usage-' || p_call, 'usage', h.debit_account_id, h.credit_account_id, p_amount,
        h.license_id, h.fine_tune_id, h.model, p_prompt::bigint + p_completion,
        'inference: ' || p_prompt || ' prompt + ' || p_completion || ' completion tokens, after its hold expired')
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        o_outcome := 'already';
        SELECT amount INTO o_charged FROM ledger_transfers WHERE id = 'usage-' || p_call;
        RETURN;
      END IF;
      -- What the provider reported, with the overage rule: below zero blocks the license until a top-up.
      UPDATE ledger_accounts
      SET debits_posted = debits_posted + p_amount,
          overage_blocked = overage_blocked OR credits_posted - debits_posted - p_amount - debits_pending < 0
      WHERE id = h.debit_account_id;
      UPDATE ledger_accounts SET credits_posted = credits_posted + p_amount WHERE id = h.credit_account_id;
      INSERT INTO inference_usage (id, license_id, fine_tune_id, prompt_tokens, completion_tokens, credits)
      VALUES (p_call, h.license_id, h.fine_tune_id, p_prompt, p_completion, p_amount);
      UPDATE inference_pending_usage SET applied_at = now() WHERE call_id = p_call AND applied_at IS NULL;
      o_outcome := 'settled';
      o_charged := p_amount;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // 0010's settlement back under its name; inference_release keeps its new body (the same release, the
  // same memo), so inference_release_hold stays with it (up replaces it).
  await sql`
    DROP FUNCTION inference_expire_hold(uuid, integer);
    DROP FUNCTION inference_settle(uuid, bigint, integer, integer, jsonb);
    ALTER FUNCTION inference_settle_held(uuid, bigint, integer, integer, jsonb) RENAME TO inference_settle;
    DROP TABLE inference_hold_sweep, inference_expired_holds;
  `.execute(db);
}
