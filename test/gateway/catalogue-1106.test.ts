import { estimateTraining, inferenceTerms } from '@tuneline/api';
import { baseModelIssue, defaultCatalogue, findBaseModel } from '@tuneline/dataset';
import { describe, expect, it } from 'vitest';

describe('gpt-3.5-turbo-1106 (the seed’s recommended base model) in the catalogue', () => {
  it('is known with its real status: shut down at OpenAI on 2026-10-23, so not fine-tunable', () => {
    expect(findBaseModel('gpt-3.5-turbo-1106')).toMatchObject({
      encoding: 'cl100k_base',
      maxTokensPerExample: 16_385,
      creditsPerMillionTrainingTokens: 8_000n,
      shutdownDate: '2026-10-23',
      fineTunable: false,
      maxOutputTokens: 4_096,
    });
    // A request naming it is told it cannot be fine-tuned, not that the model is unknown.
    expect(baseModelIssue('gpt-3.5-turbo-1106', defaultCatalogue)).toMatchObject({
      code: 'base_model_not_fine_tunable',
      field: 'baseModel',
    });
    expect(estimateTraining(defaultCatalogue, { model: 'gpt-3.5-turbo-1106', tokens: 1_000n })).toEqual({
      error: 'base model "gpt-3.5-turbo-1106" cannot be fine-tuned',
    });
  });

  it('keeps its fine-tuned inference prices, so an existing fine-tune is not charged the fallback', () => {
    expect(inferenceTerms(defaultCatalogue, 'gpt-3.5-turbo-1106')).toEqual({
      price: { inputCreditsPerMillion: 3_000n, outputCreditsPerMillion: 6_000n },
      maxOutputTokens: 4_096,
      known: true,
    });
  });
});
