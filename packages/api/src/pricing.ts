import { type Catalogue, findBaseModel, resolveEpochs, trainingCredits } from '@tuneline/dataset';

/** Inference prices of fine-tunes of one base model, in credits (1 credit = USD 0.001) per 1M tokens. */
export interface InferencePrice {
  inputCreditsPerMillion: bigint;
  outputCreditsPerMillion: bigint;
}

/** Completion tokens one choice may take when the catalogue does not say (the gateway's worst case). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 16_384;

export interface InferenceTerms {
  price: InferencePrice;
  maxOutputTokens: number;
  /** False: the catalogue has no inference price for the base model, the fallback was used. */
  known: boolean;
}

const fallbacks = new WeakMap<Catalogue, InferencePrice>();

/** The catalogue's most expensive input and output prices: what an unpriced model is charged. */
export function fallbackInferencePrice(catalogue: Catalogue): InferencePrice {
  let price = fallbacks.get(catalogue);
  if (!price) {
    price = { inputCreditsPerMillion: 0n, outputCreditsPerMillion: 0n };
    for (const m of Object.values(catalogue)) {
      if ((m.inferenceInputCreditsPerMillion ?? 0n) > price.inputCreditsPerMillion)
        price.inputCreditsPerMillion = m.inferenceInputCreditsPerMillion ?? 0n;
      if ((m.inferenceOutputCreditsPerMillion ?? 0n) > price.outputCreditsPerMillion)
        price.outputCreditsPerMillion = m.inferenceOutputCreditsPerMillion ?? 0n;
    }
    fallbacks.set(catalogue, price);
  }
  return price;
}

/**
 * What a call on a fine-tune of `baseModel` costs, from the catalogue (so `MODEL_CATALOGUE_FILE`
 * overrides it like training prices). A base model without inference prices falls back to the
 * catalogue's most expensive ones, so metering never undercharges by accident; `known: false` tells
 * the caller to log and count it.
 */
export function inferenceTerms(catalogue: Catalogue, baseModel: string): InferenceTerms {
  const base = findBaseModel(baseModel, catalogue);
  const maxOutputTokens = base?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  if (
    base?.inferenceInputCreditsPerMillion !== undefined &&
    base.inferenceOutputCreditsPerMillion !== undefined
  ) {
    return {
      price: {
        inputCreditsPerMillion: base.inferenceInputCreditsPerMillion,
        outputCreditsPerMillion: base.inferenceOutputCreditsPerMillion,
      },
      maxOutputTokens,
      known: true,
    };
  }
  return { price: fallbackInferencePrice(catalogue), maxOutputTokens, known: false };
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
