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
