import { type Catalogue, findBaseModel, isTokenCountEstimate, lifecycleOf } from '@tuneline/dataset';
import {
  type DatasetRecord,
  type FineTuneRecord,
  isTerminalStatus,
  type LicenseRecord,
  type OpenDeadLetter,
} from '@tuneline/db';
import { datasetEvaluationEstimate } from './evaluation-views.ts';

/** Records as the API shows them: bigint as decimal strings, dates as ISO strings. */

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A dead letter open on a row, as the row's views show it (null when there is none). */
export function deadLetterSummary(d: OpenDeadLetter | undefined) {
  if (!d) return null;
  return {
    id: d.id,
    queue: d.queue,
    reason: d.reason,
    recoveries: d.recoveries,
    deadLetteredAt: iso(d.deadLetteredAt),
  };
}

export function datasetView(d: DatasetRecord, deadLetter?: OpenDeadLetter, catalogue?: Catalogue) {
  const base = catalogue ? findBaseModel(d.baseModel, catalogue) : undefined;
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
    /** Held-out evaluation (testing examples × compared models × expected tokens), reserved with training. */
    evaluationEstimate: datasetEvaluationEstimate(d),
    provider: d.provider ?? (base && base.provider !== 'openai' ? base.provider : null),
    tokenCount: base && isTokenCountEstimate(base) ? ('estimate' as const) : ('exact' as const),
    /** The base model's dates at the provider it trains at (issue 21.2): can it still be trained there? */
    lifecycle: lifecycleOf(base, d.provider),
    trainFileId: d.trainFileId,
    testFileId: d.testFileId,
    autoTrain: d.autoTrain,
    warnings: d.warnings,
    errors: d.errors,
    correlationId: d.correlationId,
    createdAt: iso(d.createdAt) as string,
    updatedAt: iso(d.updatedAt) as string,
    deadLetter: deadLetterSummary(deadLetter),
  };
}

/**
 * A fine-tune, with its open dead letter and its base model's lifecycle dates from the catalogue at the
 * provider that trains it (issue 21.2).
 */
export function fineTuneView(f: FineTuneRecord, deadLetter?: OpenDeadLetter, catalogue?: Catalogue) {
  return {
    id: f.id,
    datasetId: f.datasetId,
    status: f.status,
    baseModel: f.baseModel,
    provider: f.provider,
    discarded: f.discardedAt !== null,
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
    cancellable: f.cancelRequestedAt === null && !isTerminalStatus(f.status),
    available: f.available,
    active: f.active,
    correlationId: f.correlationId,
    createdAt: iso(f.createdAt) as string,
    updatedAt: iso(f.updatedAt) as string,
    finishedAt: iso(f.finishedAt),
    settledAt: iso(f.settledAt),
    deadLetter: deadLetterSummary(deadLetter),
    alias: f.alias,
    lifecycle: lifecycleOf(catalogue ? findBaseModel(f.baseModel, catalogue) : undefined, f.provider),
  };
}

export function licenseView(l: LicenseRecord) {
  return { id: l.id, name: l.name, provider: l.provider, createdAt: l.createdAt.toISOString() };
}
