import { type Kysely, sql } from 'kysely';

/**
 * Held-out evaluation (issue 18): one run per fine-tune and one row per (run, model role, example) with
 * the model's answer, its per-field outcomes and the usage the provider reported. The answer row's key
 * is the claim: an example answered once is never asked again, and its ledger charge (kind
 * `evaluation`, id `evaluation-<fineTuneId>-<role>-<position>`) is written in the same transaction.
 * Fine-tunes keep the request's evaluation options (`evaluate`, `evaluation.maxExamples`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE fine_tunes ADD COLUMN evaluation_options jsonb;

    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release', 'evaluation'));

    CREATE TABLE evaluation_runs (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      fine_tune_id uuid NOT NULL UNIQUE REFERENCES fine_tunes(id),
      license_id text NOT NULL,
      correlation_id text NOT NULL,
      status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
      -- The models compared: {"fine_tuned": name, "base": name, "champion": name | null}.
      models jsonb,
      champion_fine_tune_id uuid,
      -- Examples of the testing file, and the ones evaluated (ids, in file order).
      examples_total integer,
      example_ids jsonb,
      max_examples integer NOT NULL,
      deadline_at timestamptz,
      summary jsonb,
      reason text,
      started_at timestamptz,
      finished_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX evaluation_runs_open ON evaluation_runs (created_at) WHERE status IN ('pending', 'running');

    CREATE TABLE evaluation_answers (
      run_id uuid NOT NULL REFERENCES evaluation_runs(id),
      role text NOT NULL CHECK (role IN ('fine_tuned', 'base', 'champion')),
      position integer NOT NULL,
      example_id text NOT NULL,
      model text NOT NULL,
      answer text NOT NULL,
      valid_json boolean NOT NULL,
      extra_keys jsonb NOT NULL DEFAULT '[]',
      -- [{field, outcome, expected, answered?}]
      fields jsonb NOT NULL,
      correct_fields integer NOT NULL,
      scored_fields integer NOT NULL,
      prompt_tokens integer NOT NULL,
      completion_tokens integer NOT NULL,
      credits bigint NOT NULL CHECK (credits >= 0),
      transfer_id text NOT NULL UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (run_id, role, position)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE evaluation_answers, evaluation_runs;
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release'));
    ALTER TABLE fine_tunes DROP COLUMN evaluation_options;
  `.execute(db);
}
