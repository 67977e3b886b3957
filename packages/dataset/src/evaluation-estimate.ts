import { inferenceCredits, inferencePrice } from './inference-prices.ts';

/**
 * The evaluation part of a fine-tune's cost, stated before and reserved with the training: every
 * evaluated test example is asked of each compared model (the fine-tuned model, its base model and,
 * when the license has one for the configuration, its current model: up to three), each call costing
 * the example's prompt tokens in and its expected answer out. Kept apart from the training estimate.
 */
export interface EvaluationEstimate {
  /** False with the reason when nothing will be evaluated (the grid states it). */
  evaluated: boolean;
  reason: string | null;
  /** Testing examples evaluated (the testing file's, capped at `maxExamples`). */
  examples: number;
  /** Models asked each example (upper bound: the champion may not exist). */
  models: number;
  /** Tokens of one call, expected: the average testing example (prompt plus the expected answer). */
  tokensPerCall: number;
  tokens: bigint;
  credits: bigint;
}

export const EVALUATION_COMPARED_MODELS = 3;
/** Share of a testing example's tokens taken to be the answer (priced as output). */
const ANSWER_SHARE = 0.25;

export function estimateEvaluation(input: {
  baseModel: string;
  testExamples: number;
  testTokens: bigint;
  evaluate?: boolean;
  maxExamples?: number;
}): EvaluationEstimate {
  const none = (reason: string): EvaluationEstimate => ({
    evaluated: false,
    reason,
    examples: 0,
    models: 0,
    tokensPerCall: 0,
    tokens: 0n,
    credits: 0n,
  });
  if (input.testExamples <= 0) return none('no testing file (testPercent 0): no evaluation');
  if (input.evaluate === false) return none('evaluation turned off (evaluate: false)');
  const examples = Math.min(input.testExamples, input.maxExamples ?? 200);
  const models = EVALUATION_COMPARED_MODELS;
  const tokensPerCall = Math.ceil(Number(input.testTokens) / input.testExamples);
  const answer = Math.ceil(tokensPerCall * ANSWER_SHARE);
  const prompt = tokensPerCall - answer;
  const calls = examples * models;
  // Each call is rounded up to a whole credit when charged, so the estimate rounds per call too.
  const perCall = inferenceCredits(inferencePrice(input.baseModel), prompt, answer);
  return {
    evaluated: true,
    reason: null,
    examples,
    models,
    tokensPerCall,
    tokens: BigInt(calls) * BigInt(tokensPerCall),
    credits: BigInt(calls) * perCall,
  };
}
