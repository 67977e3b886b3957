import { type Kysely, sql } from 'kysely';

/**
 * The document store: each license's validated documents, keyed by (configuration, document id), the
 * latest revision only. `change_seq` comes from one sequence and moves on every insert, change and
 * delete, so "what changed since version k" is an index range scan, not a diff. A deleted document keeps
 * its key as a tombstone (so the next version can count it as removed) but loses its text and fields.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE SEQUENCE document_changes;
    CREATE TABLE documents (
      license_id text NOT NULL REFERENCES licenses(id),
      configuration text NOT NULL,
      document_id text NOT NULL,
      revision integer NOT NULL DEFAULT 1,
      content_hash text NOT NULL,
      text text NOT NULL,
      fields jsonb NOT NULL,
      change_seq bigint NOT NULL DEFAULT nextval('document_changes'),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      PRIMARY KEY (license_id, configuration, document_id)
    );
    CREATE INDEX documents_changes ON documents (license_id, configuration, change_seq);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE documents;
    DROP SEQUENCE document_changes;
  `.execute(db);
}
