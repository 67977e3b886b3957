import { type Kysely, sql } from 'kysely';

/**
 * Deployments of fine-tuned models (issue 20.1): on Azure a fine-tune serves nothing until deployed,
 * and a deployment costs an hourly hosting fee until it is deleted. One row per deployment: its
 * deterministic name, its state (deploying → active → deleting → deleted, or failed), why it ended,
 * the fee per started hour fixed at activation, and the hours already charged. At most one live row
 * (not ended) per fine-tune, so activating twice creates one deployment.
 *
 * `fine_tunes.deployment_name` is the name the gateway forwards as the model (Azure's inference takes
 * the deployment name); it comes with the row `resolve_active_model` returns, so the hot path reads
 * nothing more. Hosting charges are ledger transfers of their own kind, `hosting`, one per
 * (deployment, hour): `hosting-<deploymentId>-<hour>`. Notifications may name a deployment (Azure's
 * idle deletion of it), so the uniqueness of a notification takes the deployment in too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE model_deployments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      license_id text NOT NULL REFERENCES licenses(id),
      provider text NOT NULL,
      name text NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{2,64}$'),
      model text NOT NULL,
      correlation_id text NOT NULL,
      state text NOT NULL DEFAULT 'deploying'
        CHECK (state IN ('deploying', 'active', 'deleting', 'deleted', 'failed')),
      reason text,
      credits_per_hour bigint NOT NULL CHECK (credits_per_hour >= 0),
      follow_steps integer NOT NULL DEFAULT 0,
      hours_billed integer NOT NULL DEFAULT 0 CHECK (hours_billed >= 0),
      hosting_closed boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL,
      active_at timestamptz,
      ended_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((state IN ('deleted', 'failed')) = (ended_at IS NOT NULL))
    );
    CREATE UNIQUE INDEX model_deployments_live ON model_deployments (fine_tune_id) WHERE ended_at IS NULL;
    CREATE INDEX model_deployments_open ON model_deployments (state) WHERE ended_at IS NULL;
    CREATE INDEX model_deployments_hosting ON model_deployments (active_at)
      WHERE active_at IS NOT NULL AND NOT hosting_closed;
    CREATE INDEX model_deployments_fine_tune ON model_deployments (fine_tune_id, created_at DESC);

    ALTER TABLE fine_tunes ADD COLUMN deployment_name text;

    ALTER TABLE notifications ADD COLUMN deployment_id uuid REFERENCES model_deployments(id);
    ALTER TABLE notifications DROP CONSTRAINT notifications_fine_tune_id_kind_recipient_key;
    -- Partial: a training profile's notification (0046) has no fine-tune and its own unique index.
    CREATE UNIQUE INDEX notifications_fine_tune_once
      ON notifications (fine_tune_id, kind, recipient, deployment_id) NULLS NOT DISTINCT
      WHERE fine_tune_id IS NOT NULL;

    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release', 'evaluation',
        'hosting'));
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
    ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
      CHECK (kind IN ('grant', 'reserve', 'post', 'void', 'overage', 'usage', 'hold', 'release', 'evaluation'));
    DROP INDEX notifications_fine_tune_once;
    ALTER TABLE notifications ADD CONSTRAINT notifications_fine_tune_id_kind_recipient_key
      UNIQUE (fine_tune_id, kind, recipient);
    ALTER TABLE notifications DROP COLUMN deployment_id;
    ALTER TABLE fine_tunes DROP COLUMN deployment_name;
    DROP TABLE model_deployments;
  `.execute(db);
}
