import type { ColumnType, Generated, Selectable, UpdateObject } from 'kysely';
import type { ModelMigrationsTable } from './schema-model-migrations.ts';

export type { ModelMigrationsTable };

/**
 * Kysely types of the Tuneline database. Postgres is the source of truth: every stage reads its row,
 * does its work and commits the new state plus the next stage's outbox message in one transaction.
 */

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** bigint columns come back from pg as strings; we convert at the repository edge. */
type BigIntColumn = ColumnType<string, string | number | bigint, string | number | bigint>;
type NullableBigInt = ColumnType<
  string | null,
  string | number | bigint | null | undefined,
  string | number | bigint | null
>;
type Json<T = unknown> = ColumnType<T, string, string>;

export interface LicensesTable {
  id: string;
  name: string;
  /** The license's provider (openai, azure, together); null: the deployment default. */
  provider: Generated<string | null>;
  /** Keep uploaded files at the provider after training (default: delete them). */
  keep_provider_files: Generated<boolean>;
  created_at: Generated<Date>;
}

export interface ApiKeysTable {
  id: Generated<string>;
  license_id: string | null; // null: an admin key
  /** SHA-256 of the key; the key itself is shown once and never stored. */
  key_hash: string;
  /** First characters of the key, so people can tell keys apart. */
  key_prefix: string;
  role: 'license' | 'admin';
  created_at: Generated<Date>;
  revoked_at: NullableTimestamp;
}

export type RequestStatus = 'received' | 'built' | 'rejected';

export interface FineTuneRequestsTable {
  id: Generated<string>;
  license_id: string;
  /** The upstream idempotency key. Unique per license. */
  request_id: string;
  content_hash: string;
  correlation_id: string;
  /** The validated FineTuneRequest, kept until the dataset is built. */
  payload: Json;
  status: Generated<RequestStatus>;
  error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** A jsonb column with a database default (Generated<> does not unwrap a ColumnType). */
type DefaultedJson<T> = ColumnType<T, string | undefined, string>;

export type DatasetStatus = 'building' | 'ready' | 'invalid' | 'uploading' | 'uploaded' | 'upload_failed';

export interface DatasetsTable {
  id: Generated<string>;
  request_row_id: string;
  license_id: string;
  correlation_id: string;
  base_model: string;
  /** The provider the dataset is for (request, else license, else the model's); null: the default. */
  provider: Generated<string | null>;
  /** When its uploaded files were deleted at the provider after training. */
  provider_files_deleted_at: Generated<Date | null>;
  status: Generated<DatasetStatus>;
  dump: 'all' | 'mapped';
  test_percent: number;
  /** SHA-256 of the dataset content and its 8-character short form (the default suffix). */
  content_hash: string | null;
  short_hash: string | null;
  train_path: string | null;
  test_path: string | null;
  /** SHA-256 of each file as written (null before migration 0030): checked when the file is read. */
  train_sha256: string | null;
  test_sha256: string | null;
  train_examples: Generated<number>;
  test_examples: Generated<number>;
  train_tokens: DefaultedBigInt;
  test_tokens: DefaultedBigInt;
  epochs: number | null;
  estimated_billed_tokens: NullableBigInt;
  estimated_credits: NullableBigInt;
  warnings: DefaultedJson<unknown[]>;
  errors: DefaultedJson<unknown[]>;
  train_file_id: string | null;
  test_file_id: string | null;
  /** Whether the upload stage should queue job creation on its own. */
  auto_train: boolean;
  /** Job options carried from the request to the fine-tune it creates. */
  job_options: Json;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type FineTuneStatus =
  | 'pending' // waiting for the trainer
  | 'creating' // credits reserved, provider job being created
  | 'validating_files'
  | 'queued'
  | 'running'
  | 'paused'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'insufficient_credits';

export interface FineTunesTable {
  id: Generated<string>;
  license_id: string;
  dataset_id: string;
  correlation_id: string;
  status: Generated<FineTuneStatus>;
  base_model: string;
  /** The provider that trains it (from its dataset); null: the deployment default. */
  provider: Generated<string | null>;
  /** When the license discarded it (model deleted at the provider; the row stays for the ledger). */
  discarded_at: Generated<Date | null>;
  description: string;
  /** Already parsed and validated recipients. */
  notify_emails: ColumnType<string[], string[], string[]>;
  suffix: string;
  hyperparameters: Json;
  /** Credits per 1M trained tokens, fixed at creation from the base model catalogue. */
  credits_per_million_tokens: BigIntColumn;
  provider_job_id: string | null;
  fine_tuned_model: string | null;
  trained_tokens: NullableBigInt;
  credits_reserved: NullableBigInt;
  credits_charged: NullableBigInt;
  error_code: string | null;
  error_message: string | null;
  estimated_finish: NullableTimestamp;
  next_poll_at: NullableTimestamp;
  poll_count: Generated<number>;
  /** Polls in a row that saw no change: the poller backs off with it (migration 0005). */
  unchanged_polls: Generated<number>;
  last_polled_at: NullableTimestamp;
  cancel_requested_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  settled_at: NullableTimestamp;
  /** Set by billing after the charge: only then is the model offered for activation. */
  available: Generated<boolean>;
  active: Generated<boolean>;
  /** The request's `evaluate` / `evaluation.maxExamples` (migration 0020); null: the defaults. */
  evaluation_options: ColumnType<unknown | null, string | null | undefined, string | null>;
  /** The alias the request asked its model to take, pointed when the license activates it (0040). */
  alias: ColumnType<string | null, string | null | undefined, string | null>;
  /** The name its provider serves it under once deployed (Azure: the deployment name; 0050). */
  deployment_name: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type DeploymentState = 'deploying' | 'active' | 'deleting' | 'deleted' | 'failed';

/** A deployment of a fine-tuned model at its provider (Azure), and its hosting hours (migration 0050). */
export interface ModelDeploymentsTable {
  id: Generated<string>;
  fine_tune_id: string;
  license_id: string;
  provider: string;
  /** Deterministic per fine-tune (`tl-<fineTuneId>`). */
  name: string;
  /** The fine-tuned model it serves. */
  model: string;
  correlation_id: string;
  state: Generated<DeploymentState>;
  /** Why it ended (failed, deactivated, deleted by the provider when idle). */
  reason: string | null;
  /** Credits per started hour while active, fixed at activation from the catalogue. */
  credits_per_hour: BigIntColumn;
  /** Links of the follow chain so far (the job id of the next one). */
  follow_steps: Generated<number>;
  /** Started hours already charged (`hosting` transfers 0 … hours_billed - 1). */
  hours_billed: Generated<number>;
  /** Ended and every started hour charged: the sweep leaves it alone. */
  hosting_closed: Generated<boolean>;
  created_at: Timestamp;
  /** When the provider said it serves (hosting hours count from here). */
  active_at: NullableTimestamp;
  /** When it stopped existing (hosting hours end here). */
  ended_at: NullableTimestamp;
  updated_at: Generated<Date>;
}

export type EvaluationRunStatus = 'pending' | 'running' | 'succeeded' | 'failed';
export type EvaluationRole = 'fine_tuned' | 'base' | 'champion';

/** One held-out evaluation of a fine-tune (migration 0020). */
export interface EvaluationRunsTable {
  id: Generated<string>;
  fine_tune_id: string;
  license_id: string;
  correlation_id: string;
  status: Generated<EvaluationRunStatus>;
  models: ColumnType<unknown | null, string | null | undefined, string | null>;
  champion_fine_tune_id: string | null;
  examples_total: number | null;
  example_ids: ColumnType<unknown | null, string | null | undefined, string | null>;
  max_examples: number;
  deadline_at: NullableTimestamp;
  summary: ColumnType<unknown | null, string | null | undefined, string | null>;
  reason: string | null;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** One model's answer to one evaluated example, scored, with the usage charged for it. */
export interface EvaluationAnswersTable {
  run_id: string;
  role: EvaluationRole;
  position: number;
  example_id: string;
  model: string;
  answer: string;
  valid_json: boolean;
  extra_keys: ColumnType<string[], string | undefined, string>;
  fields: ColumnType<unknown, string, string>;
  correct_fields: number;
  scored_fields: number;
  prompt_tokens: number;
  completion_tokens: number;
  credits: BigIntColumn;
  /** Only on answers charged one by one (before migration 0060); since then the run is charged once. */
  transfer_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
}

/** A license's alias and its current target (migration 0040). */
export interface ModelAliasesTable {
  license_id: string;
  name: string;
  fine_tune_id: string;
  updated_at: Generated<Date>;
}

/** One lifecycle warning per (license, base model, event, threshold) (migration 0041). */
export interface LifecycleWarningsTable {
  id: Generated<string>;
  license_id: string;
  base_model: string;
  /** The provider whose dates these are (migration 0065). */
  provider: string;
  event: 'training_closes' | 'shutdown';
  /** The catalogue's day, `YYYY-MM-DD`. */
  event_date: string;
  threshold_days: number;
  recipients: ColumnType<string[], string[], string[]>;
  models: ColumnType<string[], string[], string[]>;
  status: Generated<'pending' | 'sending' | 'sent' | 'failed'>;
  attempts: Generated<number>;
  claimed_at: NullableTimestamp;
  sent_at: NullableTimestamp;
  error: string | null;
  created_at: Generated<Date>;
}

/** Every switch of an alias, append-only (migration 0040). */
export interface ModelAliasHistoryTable {
  id: Generated<string>;
  license_id: string;
  name: string;
  action: 'point' | 'rollback';
  from_fine_tune_id: string | null;
  to_fine_tune_id: string;
  /** `key:<prefix>` of the API key that asked, or `system`. */
  actor: string;
  created_at: Generated<Date>;
}

export interface ProviderEventsTable {
  /** The provider's event id (`ftevent-...`): deduplicates repeated polls. */
  id: string;
  fine_tune_id: string;
  created_at: Timestamp;
  level: string;
  message: string;
  type: string | null;
  data: Json | null;
}

export interface CheckpointsTable {
  id: string;
  fine_tune_id: string;
  step: number;
  fine_tuned_model_checkpoint: string;
  metrics: Json;
  created_at: Timestamp;
}

export type NotificationStatus = 'pending' | 'sent' | 'failed';

export interface NotificationsTable {
  id: Generated<string>;
  /** The fine-tune the message is about; null for one about a training profile (migration 0046). */
  fine_tune_id: string | null;
  /** A training profile's notification: the profile and the version it is about. */
  profile_id: string | null;
  profile_version: number | null;
  /** A profile notification's own correlation id (a fine-tune's is on the fine-tune). */
  correlation_id: string | null;
  /** What a profile notification reports (the refusal's reason). */
  detail: string | null;
  /** The outcome the message reports: succeeded, failed, cancelled, insufficient_credits. */
  kind: string;
  recipient: string;
  status: Generated<NotificationStatus>;
  attempts: Generated<number>;
  last_error: string | null;
  message_id: string;
  /** The deployment the message is about (its idle deletion), if any (0050). */
  deployment_id: ColumnType<string | null, string | null | undefined, string | null>;
  sent_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface OutboxTable {
  id: Generated<string>;
  queue: string;
  job_id: string;
  payload: Json;
  /** When the message may be published (a delay for scheduled work such as polls). */
  available_at: Generated<Date>;
  created_at: Generated<Date>;
  published_at: NullableTimestamp;
}

export interface WebhookDeliveriesTable {
  /** The Standard Webhooks `webhook-id`: a second delivery with the same id changes nothing. */
  webhook_id: string;
  event_type: string;
  provider_job_id: string | null;
  received_at: Generated<Date>;
}

export interface InferenceUsageTable {
  id: Generated<string>;
  license_id: string;
  fine_tune_id: string;
  prompt_tokens: number;
  completion_tokens: number;
  credits: BigIntColumn;
  created_at: Generated<Date>;
}

export type DeadLetterStatus = 'retrying' | 'dead_lettered';
export type DeadLetterSubjectKind = 'request' | 'dataset' | 'fine_tune' | 'notification';

/** What the recovery sweep re-enqueued after it failed for good, and what it gave up on (migration 0015). */
export interface DeadLettersTable {
  id: Generated<string>;
  queue: string;
  /** The queued job's deterministic id: one row per job. */
  job_id: string;
  subject_kind: DeadLetterSubjectKind;
  /** The row the job works on (a request's upstream requestId, or a dataset, fine-tune or notification id). */
  subject_id: string;
  license_id: string | null;
  /** The message, re-published as it is by an admin retry. */
  payload: Json;
  status: Generated<DeadLetterStatus>;
  /** Times the sweep found the job failed for good and re-enqueued it (reset by an admin retry). */
  recoveries: Generated<number>;
  /** The job's last failure. */
  reason: string | null;
  dead_lettered_at: NullableTimestamp;
  admin_retries: Generated<number>;
  retried_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** One Idempotency-Key of a license (migration 0010): the call it started and, once settled, its answer. */
export interface InferenceIdempotencyTable {
  license_id: string;
  key: string;
  call_id: string;
  request_hash: string;
  response: unknown | null;
  created_at: Generated<Date>;
}

/** A hold the sweep released because nobody settled it within the bound (migration 0055). */
export interface InferenceExpiredHoldsTable {
  call_id: string;
  license_id: string;
  held: string;
  hold_created_at: Date;
  expired_at: Generated<Date>;
}

/** How far (ledger_transfers.seq) the hold-expiry sweep has looked: one row, id 1. */
export interface InferenceHoldSweepTable {
  id: number;
  swept_seq: string;
  swept_at: Date | null;
}

/** A call whose settlement failed after the provider answered: applied later, once, through the outbox. */
export interface InferencePendingUsageTable {
  call_id: string;
  prompt_tokens: number;
  completion_tokens: number;
  credits: BigIntColumn;
  response: unknown | null;
  created_at: Generated<Date>;
  applied_at: Date | null;
}

/** Ledger tables: see packages/ledger and migration 0002. */

/** A bigint column with a database default (selects as a string; optional on insert). */
type DefaultedBigInt = ColumnType<string, string | number | bigint | undefined, string | number | bigint>;

export interface LedgerAccountsTable {
  id: string;
  license_id: string | null;
  kind: 'license' | 'grants' | 'revenue' | 'inference';
  debits_pending: DefaultedBigInt;
  debits_posted: DefaultedBigInt;
  credits_pending: DefaultedBigInt;
  credits_posted: DefaultedBigInt;
  /** Overage the balance could not cover; blocks new reservations until topped up. */
  overage_blocked: Generated<boolean>;
  created_at: Generated<Date>;
}

/** `overage`: the part of a charge above its reservation (posted on its own, may overdraw). */
/**
 * `hold`: an inference call's worst case, pending; `usage` posts what the call used (resolving its hold,
 * or, for rows written before holds existed, on its own); `release` gives a hold back whole.
 * `evaluation_hold`: the part of a fine-tune's reservation its settlement did not charge, held until its
 * evaluation is charged (pending); `evaluation` charges a finished evaluation run and resolves that hold
 * (rows of runs charged per answer, before migration 0060, resolve nothing).
 */
export type TransferKind =
  | 'grant'
  | 'reserve'
  | 'post'
  | 'void'
  | 'overage'
  | 'usage'
  | 'hold'
  | 'release'
  | 'evaluation'
  | 'hosting'
  | 'evaluation_hold';

export interface LedgerTransfersTable {
  /** Deterministic: `grant-…`, `reserve-<fineTuneId>`, `post-<fineTuneId>`, `void-<fineTuneId>`, `overage-<fineTuneId>`, `evaluation_hold-<fineTuneId>`, `evaluation-<fineTuneId>`; inference: `hold-<callId>`, `usage-<callId>`, `release-<callId>`. */
  id: string;
  /** Write order (identity column): the usage log's running balance follows it. */
  seq: DefaultedBigInt;
  kind: TransferKind;
  debit_account_id: string;
  credit_account_id: string;
  amount: BigIntColumn;
  /** For post and void: the reservation they resolve; for release and (new) usage: the hold; for evaluation: its evaluation_hold. */
  pending_id: string | null;
  license_id: string | null;
  fine_tune_id: string | null;
  model: string | null;
  tokens: NullableBigInt;
  memo: string | null;
  created_at: Generated<Date>;
}

export interface DocumentsTable {
  license_id: string;
  configuration: string;
  document_id: string;
  revision: Generated<number>;
  content_hash: string;
  text: string;
  fields: Json;
  change_seq: Generated<string>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: NullableTimestamp;
}

export interface TrainingProfilesTable {
  id: Generated<string>;
  license_id: string;
  name: string;
  /** The validated TrainingProfileSettings (contracts) as JSON. */
  settings: Json;
  enabled: Generated<boolean>;
  last_decision: string | null;
  last_decision_reason: string | null;
  last_decision_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ProfileVersionsTable {
  profile_id: string;
  version: number;
  request_id: string;
  trigger: 'policy' | 'manual';
  documents: number;
  added: number;
  removed: number;
  change_seq: BigIntColumn;
  estimated_credits: BigIntColumn;
  created_at: Generated<Date>;
  /** The version's evaluated fine-tune and the champion it was compared with (migration 0045). */
  fine_tune_id: string | null;
  champion_fine_tune_id: string | null;
  /** What became of the version's model: null until decided. */
  promotion: 'promoted' | 'kept' | 'manual' | null;
  /** The profile's `policy.promotion` when decided (null for a promotion by hand). */
  promotion_rule: string | null;
  promotion_reason: string | null;
  /** `policy:<profile>` (the evaluator), or `key:<prefix>` of who promoted by hand. */
  promotion_actor: string | null;
  /** The alias moved (null: the profile names none; the model was only activated). */
  promotion_alias: string | null;
  promotion_at: NullableTimestamp;
  /** Promoted, waiting for its model's deployment to serve before the alias moves (migration 0075). */
  promotion_deploying: Generated<boolean>;
}

export interface Database {
  model_migrations: ModelMigrationsTable;
  licenses: LicensesTable;
  api_keys: ApiKeysTable;
  fine_tune_requests: FineTuneRequestsTable;
  datasets: DatasetsTable;
  fine_tunes: FineTunesTable;
  provider_events: ProviderEventsTable;
  checkpoints: CheckpointsTable;
  notifications: NotificationsTable;
  outbox: OutboxTable;
  webhook_deliveries: WebhookDeliveriesTable;
  inference_usage: InferenceUsageTable;
  dead_letters: DeadLettersTable;
  inference_idempotency: InferenceIdempotencyTable;
  inference_pending_usage: InferencePendingUsageTable;
  inference_expired_holds: InferenceExpiredHoldsTable;
  inference_hold_sweep: InferenceHoldSweepTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  documents: DocumentsTable;
  training_profiles: TrainingProfilesTable;
  profile_versions: ProfileVersionsTable;
  evaluation_runs: EvaluationRunsTable;
  evaluation_answers: EvaluationAnswersTable;
  model_aliases: ModelAliasesTable;
  model_alias_history: ModelAliasHistoryTable;
  lifecycle_warnings: LifecycleWarningsTable;
  model_deployments: ModelDeploymentsTable;
}

/**
 * Rows as Kysely selects them (snake_case, bigint as string). Repositories map them to camelCase
 * records at their edge (`DatasetRecord`, `FineTuneRecord`, ...); nothing outside them reads these.
 */
export type LicenseRow = Selectable<LicensesTable>;
export type DatasetRow = Selectable<DatasetsTable>;
export type FineTuneRow = Selectable<FineTunesTable>;
/** A fine-tune UPDATE's SET clause: values, or SQL expressions such as `now()`. */
export type FineTuneUpdate = UpdateObject<Database, 'fine_tunes'>;
export type FineTuneRequestRow = Selectable<FineTuneRequestsTable>;
export type NotificationRow = Selectable<NotificationsTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type DeadLetterRow = Selectable<DeadLettersTable>;
export type LedgerAccount = Selectable<LedgerAccountsTable>;
export type LedgerTransfer = Selectable<LedgerTransfersTable>;
export type EvaluationRunRow = Selectable<EvaluationRunsTable>;
export type EvaluationAnswerRow = Selectable<EvaluationAnswersTable>;
export type ModelDeploymentRow = Selectable<ModelDeploymentsTable>;
