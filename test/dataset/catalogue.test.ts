import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultCatalogue,
  findBaseModel,
  loadCatalogue,
  resolveEpochs,
  trainingCredits,
} from '@tuneline/dataset';
import { describe, expect, it } from 'vitest';

describe('base model catalogue', () => {
  it('knows the fine-tunable models with their encodings and limits', () => {
    for (const name of [
      'gpt-4o-mini-2024-07-18',
      'gpt-4o-2024-08-06',
      'gpt-4.1-2025-04-14',
      'gpt-4.1-mini-2025-04-14',
      'gpt-4.1-nano-2025-04-14',
    ]) {
      expect(findBaseModel(name)).toMatchObject({
        encoding: 'o200k_base',
        maxTokensPerExample: 65_536,
        fineTunable: true,
      });
    }
    expect(findBaseModel('gpt-3.5-turbo-0125')).toMatchObject({
      encoding: 'cl100k_base',
      maxTokensPerExample: 16_385,
    });
    expect(findBaseModel('toString')).toBeUndefined();
    expect(typeof findBaseModel('gpt-4o-mini-2024-07-18')?.creditsPerMillionTrainingTokens).toBe('bigint');
  });

  it('MODEL_CATALOGUE_FILE overrides fields and adds models, bigint-safe', () => {
    const file = join(tmpdir(), `catalogue-${process.pid}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        'gpt-4o-mini-2024-07-18': {
          creditsPerMillionTrainingTokens: '90071992547409930',
          shutdownDate: '2027-01-06',
        },
        'my-model-1': {
          encoding: 'cl100k_base',
          maxTokensPerExample: 100,
          creditsPerMillionTrainingTokens: 7,
          fineTunable: true,
        },
      }),
    );
    const c = loadCatalogue({ MODEL_CATALOGUE_FILE: file });
    expect(c['gpt-4o-mini-2024-07-18']).toMatchObject({
      creditsPerMillionTrainingTokens: 90071992547409930n,
      shutdownDate: '2027-01-06',
      encoding: 'o200k_base',
    });
    expect(findBaseModel('my-model-1', c)?.maxTokensPerExample).toBe(100);
    expect(loadCatalogue({})).toBe(defaultCatalogue);
  });

  it('refuses a malformed override file naming the entry and field', () => {
    const file = join(tmpdir(), `catalogue-bad-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ 'new-model': { encoding: 'p50k_base' } }));
    expect(() => loadCatalogue({ MODEL_CATALOGUE_FILE: file })).toThrow(/encoding/);
    writeFileSync(file, JSON.stringify({ 'new-model': { encoding: 'cl100k_base' } }));
    expect(() => loadCatalogue({ MODEL_CATALOGUE_FILE: file })).toThrow(/new-model.*maxTokensPerExample/);
  });

  it('trainingCredits rounds up to whole credits', () => {
    expect(trainingCredits(0n, 3000n)).toBe(0n);
    expect(trainingCredits(1n, 3000n)).toBe(1n);
    expect(trainingCredits(1_000_000n, 3000n)).toBe(3000n);
    expect(trainingCredits(1_000_001n, 3000n)).toBe(3001n);
    expect(trainingCredits(333_333n, 3n)).toBe(1n);
  });

  it('resolveEpochs follows the provider auto rule or explicit n_epochs', () => {
    expect(resolveEpochs(10, 'auto')).toBe(10);
    expect(resolveEpochs(3, 'auto')).toBe(25);
    expect(resolveEpochs(33, 'auto')).toBe(4); // 99 < 100 → ceil(100/33)
    expect(resolveEpochs(34, 'auto')).toBe(3);
    expect(resolveEpochs(8333, 'auto')).toBe(3);
    expect(resolveEpochs(8334, 'auto')).toBe(2);
    expect(resolveEpochs(30_000, 'auto')).toBe(1);
    expect(resolveEpochs(10, { n_epochs: 2 })).toBe(2);
    expect(resolveEpochs(10, { n_epochs: 'auto', batch_size: 4 })).toBe(10);
  });
});
