import {
  type Catalogue,
  findBaseModel,
  isTokenCountEstimate,
  resolveEpochsFor,
  trainingCredits,
  trainingOffers,
} from '@tuneline/dataset';

/**
 * Inference price list for fine-tuned models, in credits (1 credit = USD 0.001) per 1M tokens, after
 * the provider's published fine-tuned-model prices. Keyed by base model; an unknown base model falls
 * back to the most expensive entry, so metering never undercharges by accident.
 */
export interface InferencePrice {
  inputCreditsPerMillion: bigint;
  outputCreditsPerMillion: bigint;
}

export const INFERENCE_PRICES: Readonly<Record<string, InferencePrice>> = {
  'gpt-4o-mini-2024-07-18': { inputCreditsPerMillion: 300n, outputCreditsPerMillion: 1_200n },
  'gpt-4o-2024-08-06': { inputCreditsPerMillion: 3_750n, outputCreditsPerMillion: 15_000n },
  'gpt-4.1-2025-04-14': { inputCreditsPerMillion: 3_000n, outputCreditsPerMillion: 12_000n },
  'gpt-4.1-mini-2025-04-14': { inputCreditsPerMillion: 800n, outputCreditsPerMillion: 3_200n },
  'gpt-4.1-nano-2025-04-14': { inputCreditsPerMillion: 200n, outputCreditsPerMillion: 800n },
  'gpt-3.5-turbo-0125': { inputCreditsPerMillion: 3_000n, outputCreditsPerMillion: 6_000n },
};

const FALLBACK: InferencePrice = { inputCreditsPerMillion: 3_750n, outputCreditsPerMillion: 15_000n };

export function inferencePrice(baseModel: string): InferencePrice {
  return Object.hasOwn(INFERENCE_PRICES, baseModel)
    ? (INFERENCE_PRICES[baseModel] as InferencePrice)
    : FALLBACK;
}

/** Credits for one call, rounded up to whole credits (so every call costs at least 1). */
export function inferenceCredits(
  price: InferencePrice,
  promptTokens: number,
  completionTokens: number,
): bigint {
  const micro =
    BigInt(promptTokens) * price.inputCreditsPerMillion +
    BigInt(completionTokens) * price.outputCreditsPerMillion;
  return (micro + 999_999n) / 1_000_000n;
}

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
  const offer = trainingOffers(base).find((o) => o.provider === (input.provider ?? base.provider));
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
    inference: inferencePrice(base.name),
  };
}
