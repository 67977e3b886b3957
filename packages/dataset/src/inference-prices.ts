import { cachedIn } from './cache.ts';
import { type Catalogue, defaultCatalogue, findBaseModel } from './catalogue.ts';

/**
 * Inference prices of fine-tuned models, from the model catalogue (so `MODEL_CATALOGUE_FILE` overrides
 * them like training prices), in credits (1 credit = USD 0.001) per 1M tokens. The gateway meters calls
 * with them, the evaluator its evaluation calls, and the evaluation estimate uses them.
 */
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
  return cachedIn(fallbacks, catalogue, () => {
    const price = { inputCreditsPerMillion: 0n, outputCreditsPerMillion: 0n };
    for (const m of Object.values(catalogue)) {
      if ((m.inferenceInputCreditsPerMillion ?? 0n) > price.inputCreditsPerMillion)
        price.inputCreditsPerMillion = m.inferenceInputCreditsPerMillion ?? 0n;
      if ((m.inferenceOutputCreditsPerMillion ?? 0n) > price.outputCreditsPerMillion)
        price.outputCreditsPerMillion = m.inferenceOutputCreditsPerMillion ?? 0n;
    }
    return price;
  });
}

/**
 * What a call on a fine-tune of `baseModel` costs. A base model without inference prices falls back to
 * the catalogue's most expensive ones, so metering never undercharges by accident; `known: false` tells
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

/** The price of calls on fine-tunes of `baseModel` (the fallback when the catalogue has none). */
export function inferencePrice(baseModel: string, catalogue: Catalogue = defaultCatalogue): InferencePrice {
  return inferenceTerms(catalogue, baseModel).price;
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
