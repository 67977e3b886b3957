import { type Hyperparameters, resolveEpochs } from '@tuneline/contracts';

/**
 * What a fine-tune will cost and what must be reserved for it (issue 16.1): the trainer reserves its
 * own estimate plus the margin.
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
