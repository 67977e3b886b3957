import { type Kysely, sql } from 'kysely';

/**
 * The evaluation is paid from the fine-tune's reservation (issue 18.3, "reserve them with the
 * training"). The reservation already includes the evaluation estimate; until now settlement posted the
 * training charge and released the rest before the evaluation ran, so the evaluation was charged
 * against credits nobody held. Now:
 *
 * - Settlement of a fine-tune whose evaluation runs next posts the training charge and carries the
 *   reservation's unused part into a pending `evaluation_hold-<fineTuneId>` (same accounts as the
 *   reservation: license → its revenue stripe), in ONE statement (`ledger_post_holding_rest`): nothing
 *   is released in between, so nobody else can take those credits.
 * - The evaluation's answers are stored without a transfer each (`evaluation_answers.transfer_id` is
 *   NULL for them; rows of runs charged per answer keep theirs). When the run ends (succeeded, failed,
 *   timed out, skipped) the run is charged once: `evaluation-<fineTuneId>` posts the sum of its answers'
 *   credits and resolves the hold, releasing the rest (`ledger_evaluation_charge`). The charge may exceed
 *   the hold (the provider's usage is what is charged; below zero blocks the license, as an overage).
 *   A fine-tune settled before holds existed has no hold: its run charge is posted on its own.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release', 'evaluation',
        'hosting', 'evaluation_hold'));
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_resolves_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_resolves_check
      CHECK (CASE WHEN kind IN ('post', 'void', 'release') THEN pending_id IS NOT NULL
                  WHEN kind IN ('usage', 'evaluation') THEN true
                  ELSE pending_id IS NULL END);

    ALTER TABLE evaluation_answers ALTER COLUMN transfer_id DROP NOT NULL;

    -- ledger_post, then (only when the post was inserted now) the unused part of the reservation held
    -- on for the evaluation. o_posted NULL: nothing inserted (resolved before); no row: no reservation.
    -- Locks: the license account and the reservation's revenue stripe, in that order, as ledger_post.
    CREATE FUNCTION ledger_post_holding_rest(p_reserve_id text, p_id text, p_overage_id text, p_hold_id text,
      p_amount bigint, p_fine_tune uuid, p_model text, p_tokens bigint,
      OUT o_reserved bigint, OUT o_posted bigint, OUT o_held bigint)
    RETURNS SETOF record LANGUAGE plpgsql AS $$
    DECLARE
      p record;
      r ledger_transfers%ROWTYPE;
    BEGIN
      SELECT * INTO p FROM ledger_post(p_reserve_id, p_id, p_overage_id, p_amount, p_fine_tune, p_model, p_tokens);
      IF NOT FOUND THEN RETURN; END IF;
      o_reserved := p.o_reserved;
      o_posted := p.o_posted;
      IF p.o_posted IS NULL THEN RETURN NEXT; RETURN; END IF;
      SELECT * INTO r FROM ledger_transfers WHERE id = p_reserve_id;
      o_held := r.amount - p.o_posted;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
        fine_tune_id, model, memo)
      VALUES (p_hold_id, 'evaluation_hold', r.debit_account_id, r.credit_account_id, o_held, r.license_id,
        p_fine_tune, r.model, 'evaluation: the unused reservation, held until the evaluation is charged');
      UPDATE ledger_accounts SET debits_pending = debits_pending + o_held WHERE id = r.debit_account_id;
      UPDATE ledger_accounts SET credits_pending = credits_pending + o_held WHERE id = r.credit_account_id;
      RETURN NEXT;
    END $$;

    -- Charges a finished run once: the sum of its answers stored without a transfer of their own.
    -- o_outcome: 'charged' (now), 'already' (charged before: o_charged is that charge), 'nothing' (no hold
    -- and nothing to charge). The caller has ended the run in its transaction first (no answer is stored
    -- after that: the answer insert takes the run row FOR SHARE while the run is running).
    CREATE FUNCTION ledger_evaluation_charge(p_hold_id text, p_id text, p_run uuid, p_account text,
      p_revenue text, p_license text, p_fine_tune uuid, p_model text,
      OUT o_outcome text, OUT o_held bigint, OUT o_charged bigint, OUT o_answers bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      h ledger_transfers%ROWTYPE;
      v_credits bigint;
      v_prompt bigint;
      v_completion bigint;
      v_memo text;
    BEGIN
      SELECT coalesce(sum(a.credits), 0), coalesce(sum(a.prompt_tokens), 0), coalesce(sum(a.completion_tokens), 0),
        count(*)
      INTO v_credits, v_prompt, v_completion, o_answers
      FROM evaluation_answers a WHERE a.run_id = p_run AND a.transfer_id IS NULL;
      v_memo := format('evaluation: %s answers, %s prompt + %s completion tokens', o_answers, v_prompt, v_completion);
      SELECT * INTO h FROM ledger_transfers WHERE id = p_hold_id;
      IF NOT FOUND THEN
        o_held := 0;
        IF o_answers = 0 THEN o_outcome := 'nothing'; o_charged := 0; RETURN; END IF;
        INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, license_id,
          fine_tune_id, model, tokens, memo)
        VALUES (p_id, 'evaluation', p_account, p_revenue, v_credits, p_license, p_fine_tune, p_model,
          v_prompt + v_completion, v_memo)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
          o_outcome := 'already';
          SELECT amount INTO o_charged FROM ledger_transfers WHERE id = p_id;
          RETURN;
        END IF;
        UPDATE ledger_accounts
        SET debits_posted = debits_posted + v_credits,
            overage_blocked = overage_blocked OR credits_posted - debits_posted - v_credits - debits_pending < 0
        WHERE id = p_account;
        UPDATE ledger_accounts SET credits_posted = credits_posted + v_credits WHERE id = p_revenue;
        o_outcome := 'charged';
        o_charged := v_credits;
        RETURN;
      END IF;
      o_held := h.amount;
      INSERT INTO ledger_transfers (id, kind, debit_account_id, credit_account_id, amount, pending_id,
        license_id, fine_tune_id, model, tokens, memo)
      VALUES (p_id, 'evaluation', h.debit_account_id, h.credit_account_id, v_credits, h.id, h.license_id,
        h.fine_tune_id, p_model, v_prompt + v_completion,
        v_memo || CASE WHEN v_credits > h.amount THEN ', ' || (v_credits - h.amount) || ' over the hold' ELSE '' END)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        o_outcome := 'already';
        SELECT amount INTO o_charged FROM ledger_transfers WHERE pending_id = h.id;
        RETURN;
      END IF;
      -- What the provider reported is charged; above the hold it may take the balance below zero, which
      -- blocks the license until a top-up (as an overage does).
      UPDATE ledger_accounts
      SET debits_pending = debits_pending - h.amount,
          debits_posted = debits_posted + v_credits,
          overage_blocked = overage_blocked
            OR credits_posted - debits_posted - v_credits - (debits_pending - h.amount) < 0
      WHERE id = h.debit_account_id;
      UPDATE ledger_accounts
      SET credits_pending = credits_pending - h.amount, credits_posted = credits_posted + v_credits
      WHERE id = h.credit_account_id;
      o_outcome := 'charged';
      o_charged := v_credits;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP FUNCTION ledger_evaluation_charge(text, text, uuid, text, text, text, uuid, text);
    DROP FUNCTION ledger_post_holding_rest(text, text, text, text, bigint, uuid, text, bigint);
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_resolves_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_resolves_check
      CHECK (CASE WHEN kind IN ('post', 'void', 'release') THEN pending_id IS NOT NULL
                  WHEN kind = 'usage' THEN true
                  ELSE pending_id IS NULL END);
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release', 'evaluation',
        'hosting'));
  `.execute(db);
}
