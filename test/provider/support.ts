import type { ProviderProfile } from '@tuneline/provider';
import { waitFor } from '../support/context.ts';

/**
 * The provider tests' chat fine-tuning file: `n` invoice examples numbered from `first` (invoice
 * `first + i` totals `3·i` USD, from vendor `i % 5`), the assistant answering the invoice number and total.
 */
export function trainingJsonl(n: number, first = 500): string {
  return `${Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'system', content: 'Extract the invoice fields as JSON.' },
        { role: 'user', content: `Invoice ${first + i} total ${i * 3}.00 USD from vendor ${i % 5}` },
        {
          role: 'assistant',
          content: JSON.stringify({ invoice_number: String(first + i), total: `${i * 3}.00` }),
        },
      ],
    }),
  ).join('\n')}\n`;
}

/** Polls the provider's job until it has `status` (each status seen told to `onStatus`); the job then. */
export function jobReaching(
  provider: Pick<ProviderProfile, 'retrieveJob'>,
  jobId: string,
  status: string,
  timeoutMs: number,
  what: string,
  onStatus?: (status: string) => void,
) {
  return waitFor(
    async () => {
      const j = await provider.retrieveJob(jobId);
      onStatus?.(j.status);
      return j.status === status ? j : undefined;
    },
    timeoutMs,
    what,
  );
}

/**
 * Uploads a training file of `examples` examples (trainingJsonl numbered from `first`) as `filename`
 * and waits until the provider has processed it (within `timeoutMs` when given); the uploaded file.
 */
export async function processedTrainingFile(
  provider: Pick<ProviderProfile, 'uploadFile' | 'waitUntilProcessed'>,
  filename: string,
  examples: number,
  opts: { first?: number; timeoutMs?: number } = {},
) {
  const content = Buffer.from(trainingJsonl(examples, opts.first));
  const file = await provider.uploadFile({ filename, content, size: content.length });
  await provider.waitUntilProcessed(file.id, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : undefined);
  return file;
}
