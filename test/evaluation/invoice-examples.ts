// The demo's invoices as chat examples, split as the dataset builder splits them: what the simulator's
// models are trained and evaluated on in tests and the evaluation bench.
import { jobOptionsSchema } from '@tuneline/contracts';
import { chooseTestSet, compileAssistantContent, compileTemplate, splitSeed } from '@tuneline/dataset';
import { invoiceModelConfig, type SyntheticDocument, syntheticInvoices } from '@tuneline/devstack';

export const BASE_MODEL = 'gpt-4o-mini-2024-07-18';

export interface InvoiceExample {
  id: string;
  user: string;
  /** The validated fields as the assistant's answer (the mapped fields, as the dataset builder writes them). */
  assistant: string;
}

const fill = compileTemplate(invoiceModelConfig.userPromptTemplate);
const answerOf = compileAssistantContent('mapped', invoiceModelConfig.mappedFields);

export function invoiceExample(d: SyntheticDocument): InvoiceExample {
  return { id: d.id, user: fill(d), assistant: answerOf(d.fields) };
}

/** The demo's 60 invoices at a 20% test split: 48 training examples and 12 test examples. */
export function demoSplit(): { training: InvoiceExample[]; test: InvoiceExample[] } {
  const docs = syntheticInvoices({ count: 60, seed: 2026 });
  const testSet = chooseTestSet(
    docs.map((d) => d.id),
    20,
    splitSeed({
      modelConfig: invoiceModelConfig,
      dump: 'mapped',
      testPercent: 20,
      baseModel: BASE_MODEL,
      job: jobOptionsSchema.parse({}),
    }),
  );
  return {
    training: docs.filter((_, i) => !testSet.has(i)).map(invoiceExample),
    test: docs.filter((_, i) => testSet.has(i)).map(invoiceExample),
  };
}

/** Held-out invoices: other documents than the demo's (another seed and id prefix). */
export function heldOutInvoices(count: number, seed: number, idPrefix: string): InvoiceExample[] {
  return syntheticInvoices({ count, seed, idPrefix }).map(invoiceExample);
}

/** Chat training JSONL of examples with the invoice configuration's system prompt. */
export function trainingJsonl(examples: readonly InvoiceExample[]): string {
  return `${examples
    .map((e) =>
      JSON.stringify({
        messages: [
          { role: 'system', content: invoiceModelConfig.systemPrompt },
          { role: 'user', content: e.user },
          { role: 'assistant', content: e.assistant },
        ],
      }),
    )
    .join('\n')}\n`;
}
