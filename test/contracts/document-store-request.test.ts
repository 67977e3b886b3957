import { fineTuneRequestSchema } from '@tuneline/contracts';
import { describe, expect, it } from 'vitest';

const base = {
  requestId: 'r1',
  licenseId: 'lic',
  modelConfig: { systemPrompt: 'S', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
  baseModel: 'gpt-4o-mini-2024-07-18',
};
const docs = Array.from({ length: 10 }, (_, i) => ({ id: `d${i}`, text: 't', fields: { total: i } }));
const issues = (input: unknown) =>
  fineTuneRequestSchema.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('a fine-tune request names exactly one source of documents', () => {
  it('takes inline documents or the document store', () => {
    expect(issues({ ...base, documents: docs })).toEqual([]);
    expect(issues({ ...base, documentStore: { configuration: 'invoices' } })).toEqual([]);
  });

  it('refuses neither, and both, naming the field', () => {
    expect(issues(base)).toEqual(['documents: is required (or give documentStore)']);
    expect(issues({ ...base, documents: docs, documentStore: { configuration: 'invoices' } })).toEqual([
      'documentStore: cannot be given with documents',
    ]);
    expect(issues({ ...base, documentStore: { configuration: 'in voices' } })[0]).toMatch(
      /^documentStore.configuration: /,
    );
    expect(issues({ ...base, documentStore: { configuration: 'x', extra: 1 } })[0]).toMatch(/extra/);
  });
});
