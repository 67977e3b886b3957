import type { RunningSimulator } from '@tuneline/simulator';
import OpenAI, { toFile } from 'openai';
import { waitFor } from './context.ts';

export type Turn = { role: 'system' | 'user' | 'assistant'; content: string };

/** Twelve invoices whose answer is the total: what the API and gateway tests serve by default. */
const TOTALS: Turn[][] = Array.from({ length: 12 }, (_, i) => [
  { role: 'system', content: 'Extract fields as JSON.' },
  { role: 'user', content: `INVOICE ${1000 + i}\nTotal: ${i + 1}0.00 EUR` },
  { role: 'assistant', content: JSON.stringify({ total: (i + 1) * 10 }) },
]);

/**
 * Trains a real model at the simulator (through the `openai` SDK, as a provider client would), so
 * inference has something to serve; returns its `ft:` name. Other `examples` give another model.
 */
export async function trainSimulatorModel(
  sim: RunningSimulator,
  opts: { suffix?: string; examples?: Turn[][] } = {},
): Promise<string> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  const lines = (opts.examples ?? TOTALS).map((messages) => JSON.stringify({ messages })).join('\n');
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines), 'train.jsonl'),
    purpose: 'fine-tune',
  });
  await waitFor(
    async () => (await client.files.retrieve(file.id)).status === 'processed',
    10_000,
    'the file',
  );
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-4o-mini-2024-07-18',
    training_file: file.id,
    suffix: opts.suffix ?? 'test',
  });
  const done = await waitFor(
    async () => {
      const j = await client.fineTuning.jobs.retrieve(job.id);
      if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`simulator job ${j.status}`);
      return j.status === 'succeeded' ? j : undefined;
    },
    20_000,
    'simulator fine-tune',
  );
  return done.fine_tuned_model as string;
}
