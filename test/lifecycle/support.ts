import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedClock } from '@tuneline/contracts';
import { buildDataset, type DatasetBuild, loadCatalogue } from '@tuneline/dataset';
import OpenAI from 'openai';
import { afterAll, expect } from 'vitest';
import { api } from '../aliases/support.ts';
import { invoices, settings, tempStorage } from '../dataset/fixtures.ts';
import { type Gateway, startGateway } from '../gateway/support.ts';
import { test } from '../support/fixtures.ts';

/** The lifecycle tests' gateway: the API on the file's database and prefix, reading a clock of the test's. */

export const MINI = 'gpt-4o-mini-2024-07-18';
/** A call the simulator's model answers. */
export const ASK = { messages: [{ role: 'user' as const, content: 'INVOICE 1001\nSupplier: Acme' }] };

/** The day the dated tests start on, before every close and shutdown; a test that moves the clock comes back. */
const BEFORE_CLOSE = '2026-12-01T12:00:00Z';

export interface DatedGateway {
  /** The clock the API reads, at BEFORE_CLOSE to begin with. */
  clock: ReturnType<typeof fixedClock>;
  /** Puts the clock back at BEFORE_CLOSE (a test that moved it, when it ends). */
  rewind(): void;
  /** Set once the file's `beforeAll` has run. */
  gw: Gateway;
  /** A JSON call to the API with license A's key. */
  callA(method: string, path: string, body?: unknown): ReturnType<typeof api>;
}

/** Starts the gateway before the file's tests (its API reads `clock`) and closes it after them. */
export function useDatedGateway(): DatedGateway {
  const clock = fixedClock(BEFORE_CLOSE);
  const dated = {
    clock,
    rewind: () => clock.set(BEFORE_CLOSE),
    callA: (method: string, path: string, body?: unknown) =>
      api(dated.gw.gatewayUrl, dated.gw.licenseA.key, method, path, body),
  } as DatedGateway;
  test.beforeAll(async ({ database, prefix }) => {
    dated.gw = await startGateway({ database, prefix }, 'openai', { clock });
  }, 60_000);
  afterAll(async () => {
    await dated.gw?.close();
  });
  return dated;
}

/** The gateway's answer to a call of `model`, which must be the 410 of a shut-down model. */
export async function shutDownError(
  dated: DatedGateway,
  model: string,
): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await dated.gw.client.chat.completions.create({ model, ...ASK }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.APIError);
  const e = err as InstanceType<typeof OpenAI.APIError>;
  expect(e.status).toBe(410);
  expect(e.code).toBe('model_shut_down');
  return e;
}

/** The catalogue MODEL_CATALOGUE_FILE gives when it holds `entries` (a temporary file of this call). */
export function catalogueWith(entries: Record<string, unknown>) {
  const file = join(tmpdir(), `catalogue-lifecycle-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(entries));
  try {
    return loadCatalogue({ MODEL_CATALOGUE_FILE: file });
  } finally {
    rmSync(file, { force: true });
  }
}

/** The build of 12 invoices with the default settings, judged at `at` (and at `provider`), in a store of its own. */
export async function buildAt(at: string, provider?: 'azure'): Promise<DatasetBuild> {
  const store = tempStorage();
  try {
    return await buildDataset(settings(), () => invoices(12), {
      storage: store.storage,
      trainKey: 'train.jsonl',
      testKey: 'test.jsonl',
      clock: fixedClock(at),
      provider,
    });
  } finally {
    store.cleanup();
  }
}
