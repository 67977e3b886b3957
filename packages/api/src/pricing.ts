import {
  type Catalogue,
  findBaseModel,
  type InferencePrice,
  inferenceTerms,
  resolveEpochs,
  trainingCredits,
} from '@tuneline/dataset';

// Inference prices live in @tuneline/dataset, beside the catalogue they read (the evaluator charges with them too).
export {
  DEFAULT_MAX_OUTPUT_TOKENS,
  fallbackInferencePrice,
  type InferencePrice,
  type InferenceTerms,
  inferenceCredits,
  inferencePrice,
  inferenceTerms,
} from '@tuneline/dataset';

export interface TrainingEstimate {
  model: string;
  tokens: bigint;
  epochs: number;
  billedTokens: bigint;
  creditsPerMillionTrainingTokens: bigint;
  credits: bigint;
  inference: InferencePrice;
}

/**
 * What training `tokens` (one pass over the file) on `model` costs: epochs given, or resolved the way
 * the provider resolves `auto` when the example count is known (3 otherwise).
 */
export function estimateTraining(
  catalogue: Catalogue,
  input: { model: string; tokens: bigint; epochs?: number; examples?: number },
): TrainingEstimate | { error: string } {
  const base = findBaseModel(input.model, catalogue);
  if (!base) return { error: `unknown base model "${input.model}"` };
  if (!base.fineTunable) return { error: `base model "${input.model}" cannot be fine-tuned` };
  const epochs = input.epochs ?? (input.examples ? resolveEpochs(input.examples, 'auto') : 3);
  const billedTokens = input.tokens * BigInt(epochs);
  return {
    model: base.name,
    tokens: input.tokens,
    epochs,
    billedTokens,
    creditsPerMillionTrainingTokens: base.creditsPerMillionTrainingTokens,
    credits: trainingCredits(billedTokens, base.creditsPerMillionTrainingTokens),
    inference: inferenceTerms(catalogue, base.name).price,
  };
}
