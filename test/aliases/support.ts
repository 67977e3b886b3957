import type { RunningSimulator } from '@tuneline/simulator';
import OpenAI, { toFile } from 'openai';
import { waitFor } from '../support/context.ts';

/** A second model the simulator trains (the gateway rig trains one), so an alias has two real targets. */
export async function trainAnother(sim: RunningSimulator, suffix: string): Promise<string> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  const lines = Array.from({ length: 10 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'system', content: 'Extract the invoice fields as JSON.' },
        { role: 'user', content: `INVOICE ${2000 + i}\nSupplier: Beta\nTotal: ${i + 3}.50 EUR` },
        { role: 'assistant', content: JSON.stringify({ invoice_number: `${2000 + i}`, supplier: 'Beta' }) },
      ],
    }),
  ).join('\n');
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines), 'train.jsonl'),
    purpose: 'fine-tune',
  });
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-4o-mini-2024-07-18',
    training_file: file.id,
    suffix,
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

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read loosely in tests
export type Json = any;

/** A JSON call to the API with a license key. */
export async function api(
  baseUrl: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
