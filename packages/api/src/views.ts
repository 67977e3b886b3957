import { type Catalogue, findBaseModel, lifecycleOf } from '@tuneline/dataset';
import type { DatasetRecord, FineTuneRecord, LicenseRecord } from '@tuneline/db';

/** Records as the API shows them: bigint as decimal strings, dates as ISO strings. */

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

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

/** A fine-tune with its base model's lifecycle dates from the catalogue (issue 21.2). */
export function fineTuneView(f: FineTuneRecord, catalogue: Catalogue) {
  return {
    id: f.id,
    datasetId: f.datasetId,
    status: f.status,
    baseModel: f.baseModel,
    description: f.description,
    notifyEmails: f.notifyEmails,
    suffix: f.suffix,
    hyperparameters: f.hyperparameters,
    providerJobId: f.providerJobId,
    model: f.fineTunedModel,
    trainedTokens: f.trainedTokens?.toString() ?? null,
    creditsPerMillionTokens: f.creditsPerMillionTokens.toString(),
    creditsReserved: f.creditsReserved?.toString() ?? null,
    creditsCharged: f.creditsCharged?.toString() ?? null,
    errorCode: f.errorCode,
    errorMessage: f.errorMessage,
    cancelRequested: f.cancelRequestedAt !== null,
    available: f.available,
    active: f.active,
    correlationId: f.correlationId,
    createdAt: iso(f.createdAt) as string,
    updatedAt: iso(f.updatedAt) as string,
    finishedAt: iso(f.finishedAt),
    settledAt: iso(f.settledAt),
    alias: f.alias,
    lifecycle: lifecycleOf(findBaseModel(f.baseModel, catalogue)),
  };
}

export function licenseView(l: LicenseRecord) {
  return { id: l.id, name: l.name, createdAt: l.createdAt.toISOString() };
}
