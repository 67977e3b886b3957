import type { RunningSimulator } from '@tuneline/simulator';
import { trainSimulatorModel } from '../support/simulator-models.ts';

/** A second model the simulator trains (the gateway rig trains one), so an alias has two real targets. */
export function trainAnother(sim: RunningSimulator, suffix: string): Promise<string> {
  const examples = Array.from({ length: 10 }, (_, i) => [
    { role: 'system' as const, content: 'Extract the invoice fields as JSON.' },
    { role: 'user' as const, content: `INVOICE ${2000 + i}\nSupplier: Beta\nTotal: ${i + 3}.50 EUR` },
    {
      role: 'assistant' as const,
      content: JSON.stringify({ invoice_number: `${2000 + i}`, supplier: 'Beta' }),
    },
  ]);
  return trainSimulatorModel(sim, { suffix, examples });
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
