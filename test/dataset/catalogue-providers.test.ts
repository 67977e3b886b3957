// The catalogue's provider fields: Together's open models, approximate tokenizers, the provider's own
// `auto` epochs, and converting a reported price into billed tokens.
import {
  defaultCatalogue,
  findBaseModel,
  isTokenCountEstimate,
  loadCatalogue,
  resolveEpochsFor,
  tokensFromProviderPrice,
  trainingCredits,
} from '@tuneline/dataset';
import { describe, expect, it } from 'vitest';

const LLAMA = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference';

describe('providers in the catalogue', () => {
  it('lists Together base models with their provider, price and approximate tokenizer', () => {
    const llama = findBaseModel(LLAMA);
    expect(llama).toMatchObject({
      provider: 'together',
      tokenizer: 'approximate',
      encoding: 'cl100k_base',
      creditsPerMillionTrainingTokens: 480n,
      defaultEpochs: 1,
      fineTunable: true,
    });
    expect(isTokenCountEstimate(llama as NonNullable<typeof llama>)).toBe(true);
    const mini = findBaseModel('gpt-4o-mini-2024-07-18');
    expect(mini?.provider).toBe('openai');
    expect(isTokenCountEstimate(mini as NonNullable<typeof mini>)).toBe(false);
    const together = Object.values(defaultCatalogue).filter((m) => m.provider === 'together');
    expect(together.length).toBeGreaterThanOrEqual(3);
    for (const m of together) expect(m.tokenizer).toBe('approximate');
  });

  it("resolves `auto` epochs the provider's way: Together's default, OpenAI's rule otherwise", () => {
    const llama = findBaseModel(LLAMA);
    const mini = findBaseModel('gpt-4o-mini-2024-07-18');
    expect(resolveEpochsFor(llama, 20, 'auto')).toBe(1);
    expect(resolveEpochsFor(llama, 20, { n_epochs: 4 })).toBe(4);
    expect(resolveEpochsFor(mini, 20, 'auto')).toBe(5);
    expect(resolveEpochsFor(undefined, 20, 'auto')).toBe(5);
  });

  it('converts a reported price into billed tokens that charge that price', () => {
    const llama = findBaseModel(LLAMA);
    if (!llama) throw new Error('missing');
    // $0.48 at 480 credits per 1M tokens and 1000 credits per USD: 1M tokens, 480 credits.
    const tokens = tokensFromProviderPrice(0.48, llama);
    expect(tokens).toBe(1_000_000n);
    expect(trainingCredits(tokens, llama.creditsPerMillionTrainingTokens)).toBe(480n);
    expect(tokensFromProviderPrice(0, llama)).toBe(0n);
    expect(() => tokensFromProviderPrice(1, findBaseModel('gpt-4o-mini-2024-07-18') as typeof llama)).toThrow(
      /no creditsPerProviderPriceUnit/,
    );
  });

  it('keeps the new fields overridable and checked', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'cat-')), 'c.json');
    writeFileSync(file, JSON.stringify({ [LLAMA]: { creditsPerMillionTrainingTokens: 500 } }));
    expect(loadCatalogue({ MODEL_CATALOGUE_FILE: file })[LLAMA]).toMatchObject({
      provider: 'together',
      creditsPerMillionTrainingTokens: 500n,
    });
    writeFileSync(file, JSON.stringify({ [LLAMA]: { provider: 'bedrock' } }));
    expect(() => loadCatalogue({ MODEL_CATALOGUE_FILE: file })).toThrow(/provider/);
  });
});

describe('azure hosting fee in the catalogue', () => {
  it('lists an hourly fee for Azure-deployed fine-tunes and meters per started hour', async () => {
    const { hostingCredits, trainingOffers } = await import('@tuneline/dataset');
    const mini = findBaseModel('gpt-4o-mini-2024-07-18');
    if (!mini) throw new Error('missing');
    const offers = trainingOffers(mini);
    expect(offers.map((o) => o.provider)).toEqual(['openai', 'azure']);
    expect(offers.find((o) => o.provider === 'azure')?.hostingCreditsPerHour).toBe(1_700n);
    expect(offers.find((o) => o.provider === 'openai')?.hostingCreditsPerHour).toBeUndefined();
    const t0 = new Date('2026-12-01T10:00:00Z');
    expect(hostingCredits(1_700n, t0, t0)).toBe(0n);
    expect(hostingCredits(1_700n, t0, new Date('2026-12-01T10:00:01Z'))).toBe(1_700n);
    expect(hostingCredits(1_700n, t0, new Date('2026-12-01T11:00:00Z'))).toBe(1_700n);
    expect(hostingCredits(1_700n, t0, new Date('2026-12-01T11:00:01Z'))).toBe(3_400n);
  });

  it('gives the fee of a provider (hostingFeeOf), overridable by MODEL_CATALOGUE_FILE', async () => {
    const { hostingFeeOf } = await import('@tuneline/dataset');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const MINI = 'gpt-4o-mini-2024-07-18';
    expect(hostingFeeOf(findBaseModel(MINI), 'azure')).toBe(1_700n);
    expect(hostingFeeOf(findBaseModel(MINI), 'openai')).toBeUndefined();
    expect(hostingFeeOf(findBaseModel(MINI), 'simulator')).toBeUndefined();
    expect(hostingFeeOf(undefined, 'azure')).toBeUndefined();
    const file = join(mkdtempSync(join(tmpdir(), 'cat-')), 'c.json');
    writeFileSync(
      file,
      JSON.stringify({ [MINI]: { providers: { openai: {}, azure: { hostingCreditsPerHour: '2100' } } } }),
    );
    expect(hostingFeeOf(loadCatalogue({ MODEL_CATALOGUE_FILE: file })[MINI], 'azure')).toBe(2_100n);
  });
});
