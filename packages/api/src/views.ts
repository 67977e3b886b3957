import type { DatasetRecord, FineTune } from '@tuneline/db';

/** Rows as the API shows them: camelCase, bigint as decimal strings, dates as ISO strings. */

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

export function datasetView(d: DatasetRecord) {
  return {
    id: d.id,
    status: d.status,
    baseModel: d.baseModel,
    dump: d.dump,
    testPercent: d.testPercent,
    contentHash: d.contentHash,
    shortHash: d.shortHash,
    trainExamples: d.trainExamples,
    testExamples: d.testExamples,
    trainTokens: d.trainTokens.toString(),
    testTokens: d.testTokens.toString(),
    epochs: d.epochs,
    estimatedBilledTokens: d.estimatedBilledTokens?.toString() ?? null,
    estimatedCredits: d.estimatedCredits?.toString() ?? null,
    trainFileId: d.trainFileId,
    testFileId: d.testFileId,
    autoTrain: d.autoTrain,
    warnings: d.warnings,
    errors: d.errors,
    correlationId: d.correlationId,
    createdAt: iso(d.createdAt) as string,
    updatedAt: iso(d.updatedAt) as string,
  };
}

export function fineTuneView(f: FineTune) {
  return {
    id: f.id,
    datasetId: f.dataset_id,
    status: f.status,
    baseModel: f.base_model,
    description: f.description,
    notifyEmails: f.notify_emails,
    suffix: f.suffix,
    hyperparameters: f.hyperparameters,
    providerJobId: f.provider_job_id,
    model: f.fine_tuned_model,
    trainedTokens: f.trained_tokens,
    creditsPerMillionTokens: f.credits_per_million_tokens,
    creditsReserved: f.credits_reserved,
    creditsCharged: f.credits_charged,
    errorCode: f.error_code,
    errorMessage: f.error_message,
    cancelRequested: f.cancel_requested_at !== null,
    available: f.available,
    active: f.active,
    correlationId: f.correlation_id,
    createdAt: iso(f.created_at) as string,
    updatedAt: iso(f.updated_at) as string,
    finishedAt: iso(f.finished_at),
    settledAt: iso(f.settled_at),
  };
}
