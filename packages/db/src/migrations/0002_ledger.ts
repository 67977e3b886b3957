import { type Kysely, sql } from 'kysely';

/**
 * The credit ledger (TigerBeetle-style double entry, integer credits). Transfers are append-only:
 * a trigger refuses UPDATE and DELETE, so history cannot be rewritten even by a buggy worker.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE ledger_accounts (
      id text PRIMARY KEY,
      license_id text UNIQUE,
      kind text NOT NULL CHECK (kind IN ('license', 'grants', 'revenue', 'inference')),
      debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
      debits_posted bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
      credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
      credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
      overage_blocked boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((kind = 'license') = (license_id IS NOT NULL))
    );

    CREATE TABLE ledger_transfers (
      id text PRIMARY KEY,
      -- Order of writing, for the usage log's running balance (created_at is the transaction's start).
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      kind text NOT NULL CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage')),
      debit_account_id text NOT NULL REFERENCES ledger_accounts(id),
      credit_account_id text NOT NULL REFERENCES ledger_accounts(id),
      amount bigint NOT NULL CHECK (amount >= 0),
      pending_id text REFERENCES ledger_transfers(id),
      license_id text,
      fine_tune_id uuid,
      model text,
      tokens bigint,
      memo text,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (debit_account_id <> credit_account_id),
      CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL))
    );
    -- A reservation resolves at most once: one post or one void, never both.
    CREATE UNIQUE INDEX ledger_transfers_one_resolution ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
    CREATE INDEX ledger_transfers_license ON ledger_transfers (license_id, created_at);

    CREATE FUNCTION ledger_transfers_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger_transfers is append-only: % refused', TG_OP;
    END $$;
    CREATE TRIGGER ledger_transfers_no_update BEFORE UPDATE OR DELETE ON ledger_transfers
      FOR EACH ROW EXECUTE FUNCTION ledger_transfers_immutable();
    CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_immutable();

    -- System accounts are striped (64 rows each; a transfer picks its stripe from its own id) so that
    -- concurrent transfers do not queue on one hot row lock until commit.
    INSERT INTO ledger_accounts (id, kind)
      SELECT 'system-' || k || '-' || s, k FROM unnest(ARRAY['grants', 'revenue']) AS k, generate_series(0, 63) AS s;
    INSERT INTO ledger_accounts (id, kind) VALUES ('system-inference', 'inference');
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE ledger_transfers, ledger_accounts;
    DROP FUNCTION ledger_transfers_immutable();
  `.execute(db);
}
