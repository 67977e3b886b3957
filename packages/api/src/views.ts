import {
  type Catalogue,
  findBaseModel,
  hostingFeeOf,
  isTokenCountEstimate,
  lifecycleOf,
} from '@tuneline/dataset';
import {
  type DatasetRecord,
  type DeploymentRecord,
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

/** Where a fine-tune is served: its latest deployment and the deployment default provider (issue 20.1). */
export interface ServingContext {
  deployment?: DeploymentRecord | undefined;
  /** The provider of fine-tunes that name none (its kind: openai, azure, together, simulator). */
  defaultProvider: string;
}

export function deploymentView(d: DeploymentRecord) {
  return {
    name: d.name,
    state: d.state,
    reason: d.reason,
    creditsPerHour: d.creditsPerHour.toString(),
    hoursCharged: d.hoursBilled,
    createdAt: d.createdAt.toISOString(),
    activeAt: iso(d.activeAt),
    endedAt: iso(d.endedAt),
  };
}

function activationOf(f: FineTuneRecord, d: DeploymentRecord | undefined) {
  if (f.active) return 'active' as const;
  if (d?.state === 'deploying') return 'deploying' as const;
  if (d?.state === 'deleting') return 'deactivating' as const;
  return 'inactive' as const;
}

/**
 * A fine-tune, with its open dead letter, its base model's lifecycle dates from the catalogue (issue
 * 21.2), and where it is served: activation state, latest deployment and hosting fee (issue 20.1).
 */
export function fineTuneView(
  f: FineTuneRecord,
  deadLetter?: OpenDeadLetter,
  catalogue?: Catalogue,
  serving?: ServingContext,
) {
  const base = catalogue ? findBaseModel(f.baseModel, catalogue) : undefined;
  const deployment = serving?.deployment;
  const fee =
    hostingFeeOf(base, f.provider ?? serving?.defaultProvider ?? 'openai') ?? deployment?.creditsPerHour;
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
    activation: activationOf(f, deployment),
    deployment: deployment ? deploymentView(deployment) : null,
    hostingCreditsPerHour: fee?.toString() ?? null,
    correlationId: f.correlationId,
    createdAt: iso(f.createdAt) as string,
    updatedAt: iso(f.updatedAt) as string,
    finishedAt: iso(f.finishedAt),
    settledAt: iso(f.settledAt),
    deadLetter: deadLetterSummary(deadLetter),
    alias: f.alias,
    lifecycle: lifecycleOf(base, f.provider),
  };
}

export function licenseView(l: LicenseRecord) {
  return { id: l.id, name: l.name, provider: l.provider, createdAt: l.createdAt.toISOString() };
}
