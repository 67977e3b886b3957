import {
  type Catalogue,
  findBaseModel,
  type InferencePrice,
  inferenceTerms,
  isTokenCountEstimate,
  lifecycleOf,
  type ModelLifecycle,
  resolveEpochsFor,
  trainingCredits,
  trainingOffer,
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
  /** The provider that trains the model, from the catalogue. */
  provider: string;
  /** `estimate` when the model's tokenizer is approximated. */
  tokenCount: 'exact' | 'estimate';
  inference: InferencePrice;
  /** The model's dates at that provider (issue 21.2). */
  lifecycle: ModelLifecycle;
}

/**
 * What training `tokens` (one pass over the file) on `model` costs: epochs given, or resolved the way
 * the provider resolves `auto` when the example count is known (3 otherwise).
 */
export function estimateTraining(
  catalogue: Catalogue,
  input: { model: string; tokens: bigint; epochs?: number; examples?: number; provider?: string },
): TrainingEstimate | { error: string } {
  const base = findBaseModel(input.model, catalogue);
  if (!base) return { error: `unknown base model "${input.model}"` };
  if (!base.fineTunable) return { error: `base model "${input.model}" cannot be fine-tuned` };
  const epochs =
    input.epochs ??
    (input.examples ? resolveEpochsFor(base, input.examples, 'auto') : (base.defaultEpochs ?? 3));
  const billedTokens = input.tokens * BigInt(epochs);
  const offer = trainingOffer(base, input.provider ?? base.provider);
  if (!offer) return { error: `base model "${input.model}" is not trained by provider "${input.provider}"` };
  return {
    model: base.name,
    tokens: input.tokens,
    epochs,
    billedTokens,
    creditsPerMillionTrainingTokens: offer.creditsPerMillionTrainingTokens,
    credits: trainingCredits(billedTokens, offer.creditsPerMillionTrainingTokens),
    provider: offer.provider,
    tokenCount: isTokenCountEstimate(base) ? ('estimate' as const) : ('exact' as const),
    inference: inferenceTerms(catalogue, base.name).price,
    lifecycle: lifecycleOf(base, offer.provider),
  };
}
