import type { Migration } from 'kysely';
import * as core from './0001_core.ts';
import * as ledger from './0002_ledger.ts';
import * as stages from './0005_stages.ts';
import * as ledgerFunctions from './0006_ledger_functions.ts';
import * as inferenceHolds from './0010_inference_holds.ts';
import * as inferenceSettleMany from './0011_inference_settle_many.ts';
import * as deadLetters from './0015_dead_letters.ts';
import * as listIndexes from './0016_list_indexes.ts';
import * as evaluation from './0020_evaluation.ts';
import * as providers from './0025_providers.ts';
import * as retention from './0026_retention.ts';
import * as discard from './0027_discard.ts';
import * as datasetFileHashes from './0030_dataset_file_hashes.ts';
import * as documents from './0035_documents.ts';
import * as trainingProfiles from './0036_training_profiles.ts';
import * as modelAliases from './0040_model_aliases.ts';
import * as lifecycleWarnings from './0041_lifecycle_warnings.ts';
import * as resolveModel from './0042_resolve_model.ts';
import * as promotion from './0045_promotion.ts';
import * as profileNotifications from './0046_profile_notifications.ts';
import * as modelDeployments from './0050_model_deployments.ts';
import * as inferenceHoldExpiry from './0055_inference_hold_expiry.ts';
import * as inferenceIdempotencyRetention from './0056_inference_idempotency_retention.ts';
import * as evaluationHold from './0060_evaluation_hold.ts';
import * as evaluationAnswerTransferIndex from './0061_evaluation_answer_transfer_index.ts';
import * as lifecycleWarningProvider from './0065_lifecycle_warning_provider.ts';
import * as modelMigrations from './0070_model_migrations.ts';
import * as promotionDeploying from './0075_promotion_deploying.ts';
import * as inferenceSettleSet from './0085_inference_settle_set.ts';
import * as inferenceHoldMany from './0086_inference_hold_many.ts';

/** Every migration, by name; the inline provider hands these to Kysely's Migrator in name order. */
export const migrations: Record<string, Migration> = {
  '0001_core': core,
  '0002_ledger': ledger,
  '0005_stages': stages,
  '0006_ledger_functions': ledgerFunctions,
  '0010_inference_holds': inferenceHolds,
  '0011_inference_settle_many': inferenceSettleMany,
  '0015_dead_letters': deadLetters,
  '0016_list_indexes': listIndexes,
  '0020_evaluation': evaluation,
  '0025_providers': providers,
  '0026_retention': retention,
  '0027_discard': discard,
  '0030_dataset_file_hashes': datasetFileHashes,
  '0035_documents': documents,
  '0036_training_profiles': trainingProfiles,
  '0040_model_aliases': modelAliases,
  '0041_lifecycle_warnings': lifecycleWarnings,
  '0042_resolve_model': resolveModel,
  '0045_promotion': promotion,
  '0046_profile_notifications': profileNotifications,
  '0050_model_deployments': modelDeployments,
  '0055_inference_hold_expiry': inferenceHoldExpiry,
  '0056_inference_idempotency_retention': inferenceIdempotencyRetention,
  '0060_evaluation_hold': evaluationHold,
  '0061_evaluation_answer_transfer_index': evaluationAnswerTransferIndex,
  '0065_lifecycle_warning_provider': lifecycleWarningProvider,
  '0070_model_migrations': modelMigrations,
  '0075_promotion_deploying': promotionDeploying,
  '0085_inference_settle_set': inferenceSettleSet,
  '0086_inference_hold_many': inferenceHoldMany,
};
