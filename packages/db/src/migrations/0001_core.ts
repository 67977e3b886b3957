import { type Kysely, sql } from 'kysely';

/** Core tables: licenses and keys, requests, datasets, fine-tunes and their provider data, notifications, outbox. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE licenses (
      id text PRIMARY KEY,
      name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text REFERENCES licenses(id),
      key_hash text NOT NULL UNIQUE,
      key_prefix text NOT NULL,
      role text NOT NULL CHECK (role IN ('license', 'admin')),
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz,
      CHECK ((role = 'admin') = (license_id IS NULL))
    );

    CREATE TABLE fine_tune_requests (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text NOT NULL,
      request_id text NOT NULL,
      content_hash text NOT NULL,
      correlation_id text NOT NULL,
      payload jsonb NOT NULL,
      status text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'built', 'rejected')),
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (license_id, request_id)
    );
    CREATE INDEX fine_tune_requests_waiting ON fine_tune_requests (created_at) WHERE status = 'received';

    CREATE TABLE datasets (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      request_row_id uuid NOT NULL UNIQUE REFERENCES fine_tune_requests(id),
      license_id text NOT NULL,
      correlation_id text NOT NULL,
      base_model text NOT NULL,
      status text NOT NULL DEFAULT 'building'
        CHECK (status IN ('building', 'ready', 'invalid', 'uploading', 'uploaded', 'upload_failed')),
      dump text NOT NULL CHECK (dump IN ('all', 'mapped')),
      test_percent real NOT NULL,
      content_hash text,
      short_hash text,
      train_path text,
      test_path text,
      train_examples integer NOT NULL DEFAULT 0,
      test_examples integer NOT NULL DEFAULT 0,
      train_tokens bigint NOT NULL DEFAULT 0,
      test_tokens bigint NOT NULL DEFAULT 0,
      epochs integer,
      estimated_billed_tokens bigint,
      estimated_credits bigint,
      warnings jsonb NOT NULL DEFAULT '[]',
      errors jsonb NOT NULL DEFAULT '[]',
      train_file_id text,
      test_file_id text,
      auto_train boolean NOT NULL,
      job_options jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX datasets_license ON datasets (license_id, created_at DESC);

    CREATE TABLE fine_tunes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text NOT NULL,
      dataset_id uuid NOT NULL REFERENCES datasets(id),
      correlation_id text NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'creating', 'validating_files', 'queued', 'running', 'paused',
        'succeeded', 'failed', 'cancelled', 'insufficient_credits')),
      base_model text NOT NULL,
      description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 120),
      notify_emails text[] NOT NULL DEFAULT '{}',
      suffix text NOT NULL CHECK (suffix ~ '^[a-z0-9-]{1,18}$'),
      hyperparameters jsonb NOT NULL,
      -- Price fixed when the fine-tune is created, so a later catalogue change never reprices it.
      credits_per_million_tokens bigint NOT NULL CHECK (credits_per_million_tokens >= 0),
      provider_job_id text UNIQUE,
      fine_tuned_model text,
      trained_tokens bigint,
      credits_reserved bigint,
      credits_charged bigint,
      error_code text,
      error_message text,
      estimated_finish timestamptz,
      next_poll_at timestamptz,
      poll_count integer NOT NULL DEFAULT 0,
      cancel_requested_at timestamptz,
      finished_at timestamptz,
      settled_at timestamptz,
      available boolean NOT NULL DEFAULT false,
      active boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (NOT active OR available)
    );
    CREATE INDEX fine_tunes_license ON fine_tunes (license_id, created_at DESC);
    CREATE INDEX fine_tunes_open ON fine_tunes (status) WHERE settled_at IS NULL;
    -- One fine-tune per dataset at a time is not required, but one per dataset+description is not unique either:
    -- idempotency of creation comes from the caller-supplied id.

    CREATE TABLE provider_events (
      id text PRIMARY KEY,
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      created_at timestamptz NOT NULL,
      level text NOT NULL,
      message text NOT NULL,
      type text,
      data jsonb
    );
    CREATE INDEX provider_events_fine_tune ON provider_events (fine_tune_id, created_at);

    CREATE TABLE checkpoints (
      id text PRIMARY KEY,
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      step integer NOT NULL,
      fine_tuned_model_checkpoint text NOT NULL,
      metrics jsonb NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX checkpoints_fine_tune ON checkpoints (fine_tune_id, step);

    CREATE TABLE notifications (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      kind text NOT NULL,
      recipient text NOT NULL CHECK (recipient !~ '[\r\n]'),
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      message_id text NOT NULL UNIQUE,
      sent_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (fine_tune_id, kind, recipient)
    );
    CREATE INDEX notifications_pending ON notifications (created_at) WHERE status = 'pending';

    CREATE TABLE outbox (
      id bigserial PRIMARY KEY,
      queue text NOT NULL,
      job_id text NOT NULL CHECK (position(':' in job_id) = 0),
      payload jsonb NOT NULL,
      available_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz
    );
    CREATE INDEX outbox_unpublished ON outbox (available_at) WHERE published_at IS NULL;

    CREATE TABLE webhook_deliveries (
      webhook_id text PRIMARY KEY,
      event_type text NOT NULL,
      provider_job_id text,
      received_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE inference_usage (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      license_id text NOT NULL,
      fine_tune_id uuid NOT NULL REFERENCES fine_tunes(id),
      prompt_tokens integer NOT NULL,
      completion_tokens integer NOT NULL,
      credits bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE inference_usage, webhook_deliveries, outbox, notifications, checkpoints, provider_events,
      fine_tunes, datasets, fine_tune_requests, api_keys, licenses;
  `.execute(db);
}
