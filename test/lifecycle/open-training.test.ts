import { defaultCatalogue, openForTraining } from '@tuneline/dataset';
import { describe, expect, it } from 'vitest';

// What `npm run demo` trains (issue 21): the first (base model, provider) whose training is open on the
// demo's clock per the catalogue, so the demo keeps working after a provider stops taking jobs.

const PREFERRED = [
  'gpt-4o-mini-2024-07-18',
  'gpt-4.1-mini-2025-04-14',
  'gpt-4.1-nano-2025-04-14',
  'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference',
];
const first = (day: string) => {
  const [c] = openForTraining(defaultCatalogue, new Date(`${day}T12:00:00Z`), PREFERRED);
  return c ? `${c.model.name} at ${c.provider}` : 'none';
};

describe('openForTraining', () => {
  it("takes the preferred model at its own provider while open, then another provider's, then the next model", () => {
    expect(first('2026-11-16')).toBe('gpt-4o-mini-2024-07-18 at openai');
    expect(first('2027-01-05')).toBe('gpt-4o-mini-2024-07-18 at openai');
    // OpenAI takes no new jobs from 2027-01-06; Azure trains gpt-4o-mini until 2027-04-01.
    expect(first('2027-01-06')).toBe('gpt-4o-mini-2024-07-18 at azure');
    expect(first('2027-04-01')).toBe('gpt-4.1-mini-2025-04-14 at azure');
    // Azure's 4.1 family closes 2027-04-14; Together's models have no announced date.
    expect(first('2027-04-14')).toBe('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference at together');
  });

  it('lists only fine-tunable models, and no pair past its close', () => {
    const now = new Date('2027-02-01T00:00:00Z');
    const all = openForTraining(defaultCatalogue, now);
    expect(all.every((c) => c.model.fineTunable)).toBe(true);
    expect(all.some((c) => c.provider === 'openai')).toBe(false);
    expect(all.map((c) => c.model.name)).not.toContain('gpt-4o-2024-05-13');
  });
});
