import { type Kysely, sql } from 'kysely';

/**
 * Model aliases (issue 21.1): a license's stable name for a use (`invoices`) pointing at one of its
 * fine-tunes, and the append-only history of every switch (who, when, from, to). The gateway resolves
 * an alias by its primary key joined to the fine-tune's; `fine_tunes.alias` records the alias a request
 * asked its result to take (pointed when the license activates that model).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE model_aliases (
      license_id text NOT NULL REFERENCES licenses(id),
      name text NOT NULL,
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (license_id, name)
    );
    CREATE TABLE model_alias_history (
      id bigserial PRIMARY KEY,
      license_id text NOT NULL,
      name text NOT NULL,
      action text NOT NULL CHECK (action IN ('point', 'rollback')),
      from_fine_tune_id uuid REFERENCES fine_tunes(id),
      to_fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      actor text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (license_id, name) REFERENCES model_aliases(license_id, name)
    );
    CREATE INDEX model_alias_history_alias ON model_alias_history (license_id, name, id DESC);
    CREATE INDEX fine_tunes_license_model ON fine_tunes (license_id, fine_tuned_model) WHERE active;
    ALTER TABLE fine_tunes ADD COLUMN alias text;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE fine_tunes DROP COLUMN alias;
    DROP INDEX fine_tunes_license_model;
    DROP TABLE model_alias_history;
    DROP TABLE model_aliases;
  `.execute(db);
}
