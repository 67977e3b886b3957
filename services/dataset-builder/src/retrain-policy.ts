import { MIN_DOCUMENTS, type RetrainPolicy, type TrainingProfileSettings } from '@tuneline/contracts';
import { type Catalogue, findBaseModel, resolveEpochs, trainingCredits } from '@tuneline/dataset';

/** What a re-train check decided about one profile, with the reason the API and the hub show. */
export type RetrainDecision =
  | { action: 'train'; reason: string }
  | { action: 'wait'; reason: string }
  | { action: 'refuse'; reason: string };

export interface RetrainInput {
  policy: RetrainPolicy;
  trigger: 'policy' | 'manual';
  /** The profile's latest version, if any. */
  last?: { version: number; documents: number; createdAt: Date };
  /** The store now: live documents, and those added/changed or deleted since the last version. */
  changes: { live: number; changed: number; removed: number };
  now: Date;
  /** The new version's estimate, and what the profile's versions were estimated at this month. */
  estimatedCredits: bigint;
  usedThisMonth: bigint;
}

const HOUR_MS = 3_600_000;

/**
 * The policy, as a pure function: enough documents, enough change since the last version (a count or a
 * share), not sooner than the interval, within the month's budget. A manual re-train skips the count and
 * the interval but never the budget, and is not started when nothing changed.
 */
export function decideRetrain(input: RetrainInput): RetrainDecision {
  const { policy, last, changes, now } = input;
  if (changes.live < MIN_DOCUMENTS) {
    return {
      action: 'wait',
      reason: `${changes.live} documents stored; at least ${MIN_DOCUMENTS} are needed`,
    };
  }
  const since = last ? `since version ${last.version}` : 'stored';
  if (input.trigger === 'policy') {
    if (last && policy.minIntervalHours > 0) {
      const next = new Date(last.createdAt.getTime() + policy.minIntervalHours * HOUR_MS);
      if (now < next) {
        return {
          action: 'wait',
          reason: `version ${last.version} was started at ${last.createdAt.toISOString()}; the next not before ${next.toISOString()} (minIntervalHours ${policy.minIntervalHours})`,
        };
      }
    }
    const count = last ? changes.changed : changes.live;
    const growth = last && last.documents > 0 ? (changes.changed * 100) / last.documents : undefined;
    const byCount = count >= policy.minNewDocuments;
    const byGrowth =
      policy.minGrowthPercent !== undefined && growth !== undefined && growth >= policy.minGrowthPercent;
    if (!byCount && !byGrowth) {
      const share = policy.minGrowthPercent !== undefined ? ` or ${policy.minGrowthPercent}% growth` : '';
      return {
        action: 'wait',
        reason: `${count} new or changed documents ${since}; ${policy.minNewDocuments}${share} needed`,
      };
    }
  } else if (last && changes.changed === 0 && changes.removed === 0) {
    return { action: 'wait', reason: `nothing changed since version ${last.version}` };
  }
  const budget = policy.monthlyBudgetCredits;
  if (budget !== undefined && input.usedThisMonth + input.estimatedCredits > BigInt(budget)) {
    return {
      action: 'refuse',
      reason: `estimated ${input.estimatedCredits} credits would exceed the monthly budget of ${budget} (${input.usedThisMonth} used this month)`,
    };
  }
  const what = last
    ? `${changes.changed} new or changed and ${changes.removed} deleted documents since version ${last.version}`
    : `${changes.live} documents stored`;
  return { action: 'train', reason: `${input.trigger === 'manual' ? 'asked for' : 'policy met'}: ${what}` };
}

/** Bytes per token assumed before a build has counted them (English and German OCR text: 3.5–4.5). */
export const BYTES_PER_TOKEN_ESTIMATE = 4;

/**
 * A version's credits before it is built, for the budget: the stored documents' bytes plus each
 * example's prompts, at BYTES_PER_TOKEN_ESTIMATE, for the training share and the epochs the provider
 * will run, at the catalogue's price. The build then counts exactly, and the trainer's reservation
 * remains what is charged against.
 */
export function estimateVersionCredits(
  settings: Pick<TrainingProfileSettings, 'baseModel' | 'testPercent' | 'modelConfig' | 'job'>,
  store: { live: number; liveBytes: number },
  catalogue: Catalogue,
): bigint {
  const model = findBaseModel(settings.baseModel, catalogue);
  if (!model) return 0n; // the build refuses an unknown model with its own error
  const promptBytes = Buffer.byteLength(
    settings.modelConfig.systemPrompt + settings.modelConfig.userPromptTemplate,
  );
  const trainShare = 1 - settings.testPercent / 100;
  const trainDocs = Math.round(store.live * trainShare);
  const tokens = Math.ceil(
    ((store.liveBytes + store.live * promptBytes) * trainShare) / BYTES_PER_TOKEN_ESTIMATE,
  );
  const epochs = resolveEpochs(trainDocs, settings.job.hyperparameters);
  return trainingCredits(BigInt(tokens) * BigInt(epochs), model.creditsPerMillionTrainingTokens);
}

/** The first instant of `now`'s calendar month (UTC): where a monthly budget starts. */
export const monthStart = (now: Date): Date => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
