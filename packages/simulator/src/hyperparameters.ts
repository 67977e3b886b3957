// How the provider resolves `auto` hyperparameters (OpenAI's published rule for epochs).
export const TARGET_EPOCHS = 3;
export const MIN_TARGET_EXAMPLES = 100;
export const MAX_TARGET_EXAMPLES = 25000;
export const MIN_DEFAULT_EPOCHS = 1;
export const MAX_DEFAULT_EPOCHS = 25;

export function resolveAutoEpochs(nExamples: number): number {
  if (nExamples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) {
    return Math.min(MAX_DEFAULT_EPOCHS, Math.ceil(MIN_TARGET_EXAMPLES / nExamples));
  }
  if (nExamples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) {
    return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / nExamples));
  }
  return TARGET_EPOCHS;
}

/** About 0.2% of the examples, clamped to 1..256 (what OpenAI's `auto` batch size looks like). */
export function resolveAutoBatchSize(nExamples: number): number {
  return Math.max(1, Math.min(256, Math.ceil(nExamples * 0.002)));
}

export const AUTO_LEARNING_RATE_MULTIPLIER = 1.8;

export type HyperparameterValue = 'auto' | number;

export interface RequestedHyperparameters {
  n_epochs?: HyperparameterValue;
  batch_size?: HyperparameterValue;
  learning_rate_multiplier?: HyperparameterValue;
}

export interface ResolvedHyperparameters {
  n_epochs: number;
  batch_size: number;
  learning_rate_multiplier: number;
}

export function resolveHyperparameters(
  requested: RequestedHyperparameters,
  nExamples: number,
): ResolvedHyperparameters {
  const pick = (v: HyperparameterValue | undefined, auto: number) => (typeof v === 'number' ? v : auto);
  return {
    n_epochs: pick(requested.n_epochs, resolveAutoEpochs(nExamples)),
    batch_size: pick(requested.batch_size, resolveAutoBatchSize(nExamples)),
    learning_rate_multiplier: pick(requested.learning_rate_multiplier, AUTO_LEARNING_RATE_MULTIPLIER),
  };
}
