import type { Clock } from '@tuneline/contracts';
import { afterAll } from 'vitest';
import { api } from '../aliases/support.ts';
import { type Gateway, startGateway } from '../gateway/support.ts';
import { test } from '../support/fixtures.ts';

/** The lifecycle tests' gateway: the API on the file's database and prefix, reading a clock of the test's. */

export const MINI = 'gpt-4o-mini-2024-07-18';
/** A call the simulator's model answers. */
export const ASK = { messages: [{ role: 'user' as const, content: 'INVOICE 1001\nSupplier: Acme' }] };

export interface DatedGateway {
  /** Set once the file's `beforeAll` has run. */
  gw: Gateway;
  /** A JSON call to the API with license A's key. */
  callA(method: string, path: string, body?: unknown): ReturnType<typeof api>;
}

/** Starts the gateway before the file's tests (its API reads `clock`) and closes it after them. */
export function useDatedGateway(clock: Clock): DatedGateway {
  const dated = {
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
