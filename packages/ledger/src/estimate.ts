import { type Hyperparameters, resolveEpochs } from '@tuneline/contracts';

/**
 * What a fine-tune will cost and what must be reserved for it (issue 16.1, 16.2). The API checks a new
 * fine-tune against these before accepting it (402); the trainer reserves with them, and its
 * reservation stays the authority (one statement checks and holds the credits).
 */

/** Credits for trained tokens at a price per million tokens, rounded up to whole credits. */
export function creditsForTokens(tokens: bigint, creditsPerMillionTokens: bigint): bigint {
  return (tokens * creditsPerMillionTokens + 999_999n) / 1_000_000n;
}

/** What a dataset's build measured: its training examples and the estimate for the request's options. */
export interface DatasetEstimate {
  trainExamples: number;
  /** The epochs the estimate is for (the request's hyperparameters, or the `auto` rule). */
  epochs: number | null;
  /** `epochs` passes over the training file's billed tokens. */
  estimatedBilledTokens: bigint | null;
  estimatedCredits: bigint | null;
}

export interface FineTuneEstimate {
  epochs: number;
  billedTokens: bigint;
  credits: bigint;
}

/**
 * A fine-tune's own estimate: the epochs its hyperparameters resolve to (explicit `n_epochs`, or the
 * provider's `auto` rule for the dataset's example count) over one pass's billed tokens, at the
 * fine-tune's price. When that is the epoch count the dataset's estimate was made for, the dataset's
 * estimate is the fine-tune's. Null when the dataset has no estimate (an invalid build).
 */
export function fineTuneEstimate(
  dataset: DatasetEstimate,
  fineTune: { hyperparameters: Hyperparameters | undefined; creditsPerMillionTokens: bigint },
): FineTuneEstimate | null {
  const { epochs: datasetEpochs, estimatedBilledTokens, estimatedCredits } = dataset;
  if (!datasetEpochs || datasetEpochs < 1 || estimatedBilledTokens === null || estimatedCredits === null) {
    return null;
  }
  const epochs = resolveEpochs(dataset.trainExamples, fineTune.hyperparameters);
  if (epochs === datasetEpochs) {
    return { epochs, billedTokens: estimatedBilledTokens, credits: estimatedCredits };
  }
  // The build bills `datasetEpochs` whole passes, so one pass is an exact division.
  const billedTokens = (estimatedBilledTokens / BigInt(datasetEpochs)) * BigInt(epochs);
  return { epochs, billedTokens, credits: creditsForTokens(billedTokens, fineTune.creditsPerMillionTokens) };
}

/** Estimated credits plus the margin, rounded up to whole credits: what the trainer reserves. */
export function reservationAmount(estimatedCredits: bigint, marginPercent: number): bigint {
  const margin = BigInt(Math.round(marginPercent * 100));
  return (estimatedCredits * (10_000n + margin) + 9_999n) / 10_000n;
}

/** A fine-tune's estimate in its two parts: the training, and the held-out evaluation after it. */
export interface EstimateParts {
  training: bigint;
  /** 0 without a testing file or with `evaluate: false`. */
  evaluation: bigint;
}

/** Why a reservation cannot be made, with every amount a user needs to act on it. */
export interface CreditShortfall {
  reason: 'insufficient_credits' | 'overage_blocked';
  /** The fine-tune's estimate, before the margin (training plus evaluation). */
  estimate: bigint;
  /** The estimate's parts, when the caller gave them. */
  parts?: EstimateParts;
  marginPercent: number;
  /** What the reservation needs: the estimate plus the margin. */
  required: bigint;
  available: bigint;
  /** `required - available` (never below 0: a blocked license may have enough but cannot use it). */
  shortfall: bigint;
}

/**
 * The shortfall of a reservation of `estimate` (a total, or training and evaluation apart) plus the
 * margin against a balance, or null when it fits. The same rule as the ledger's reserve: an overage
 * block refuses whatever the balance.
 */
export function creditShortfall(
  estimate: bigint | EstimateParts,
  marginPercent: number,
  balance: { available: bigint; overageBlocked: boolean },
): CreditShortfall | null {
  const parts = typeof estimate === 'bigint' ? undefined : estimate;
  const total = parts ? parts.training + parts.evaluation : (estimate as bigint);
  const required = reservationAmount(total, marginPercent);
  if (!balance.overageBlocked && balance.available >= required) return null;
  return {
    reason: balance.overageBlocked ? 'overage_blocked' : 'insufficient_credits',
    estimate: total,
    ...(parts ? { parts } : {}),
    marginPercent,
    required,
    available: balance.available,
    shortfall: required > balance.available ? required - balance.available : 0n,
  };
}

/** One sentence for the API's 402, the fine-tune's row and its e-mail alike. */
export function insufficientCreditsMessage(s: CreditShortfall): string {
  const why = s.reason === 'overage_blocked' ? ' (blocked by an unpaid overage until topped up)' : '';
  // The split is stated when there is an evaluation to pay for (else the estimate is the training's).
  const estimate =
    s.parts && s.parts.evaluation > 0n
      ? `estimate ${s.estimate} = training ${s.parts.training} + evaluation ${s.parts.evaluation}, plus ${s.marginPercent}% margin`
      : `estimate ${s.estimate} + ${s.marginPercent}% margin`;
  return (
    `Insufficient credits${why}: this fine-tune needs ${s.required} credits (${estimate}), ` +
    `the license has ${s.available} available, a shortfall of ${s.shortfall} credits.`
  );
}
