import { buildApi, profileChatProvider } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import { type ApiCall, injectJson } from '../support/api-app.ts';
import { redisUrl, type TestDatabase } from '../support/context.ts';
import { test as base } from '../support/fixtures.ts';
import { trainSimulatorModel as trainModel } from '../support/simulator-models.ts';
import { makeLicense } from './fixtures.ts';

/** What the API test files share: one app per file over its own database, prefix and simulator. */

// biome-ignore lint/suspicious/noExplicitAny: tests read and walk arbitrary response JSON
export type AnyJson = any;

export const ADMIN_KEY = 'admin-key-for-api-tests-0123456789';

export type App = Awaited<ReturnType<typeof buildApi>>;

export interface ApiContext {
  t: TestDatabase;
  redis: Redis;
  prefix: string;
  sim: RunningSimulator;
  app: App;
  /** Two licenses with 100,000 credits each and a key each: `lic-a` and `lic-b`. */
  a: { id: string; key: string };
  b: { id: string; key: string };
  /** Injects a request into the app, with `key` as its bearer key, and reads the answer. */
  call: ApiCall;
}

/** The fixtures' test API plus `api`: the app (admin key ADMIN_KEY) and what it runs on, once per file. */
export const test = base.extend(
  'api',
  { scope: 'file' },
  async ({ database, prefix }, { onCleanup }): Promise<ApiContext> => {
    const redis = createRedis(redisUrl(), 'producer');
    let sim: RunningSimulator | undefined;
    let app: App | undefined;
    onCleanup(async () => {
      await app?.close();
      await sim?.close();
      redis.disconnect();
    });
    sim = await startSimulator({ speed: 100_000, seed: 7 });
    const profile = createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'simulator',
        SIMULATOR_URL: sim.url,
        SIMULATOR_API_KEY: sim.apiKey,
      }),
    );
    app = await buildApi({
      db: database.db,
      redis,
      queuePrefix: prefix,
      catalogue: defaultCatalogue,
      provider: profileChatProvider(profile),
      adminKey: ADMIN_KEY,
    });
    const started = app;
    const a = await makeLicense(database.db, 'lic-a');
    const b = await makeLicense(database.db, 'lic-b');
    return {
      t: database,
      redis,
      prefix,
      sim,
      app,
      a,
      b,
      call: (...args) => injectJson(started, ...args),
    };
  },
);

export const it = test;

export function documents(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `inv-${i}`,
    text: `INVOICE ${1000 + i}\nTotal: ${(i + 1) * 10}.00 EUR`,
    fields: { invoiceNumber: `${1000 + i}`, total: (i + 1) * 10 },
  }));
}

export function request(requestId: string, extra: Record<string, unknown> = {}) {
  return {
    requestId,
    documents: documents(12),
    modelConfig: {
      systemPrompt: 'Extract fields as JSON.',
      userPromptTemplate: 'Document:\n{{text}}',
      mappedFields: ['total'],
    },
    baseModel: 'gpt-4o-mini-2024-07-18',
    testPercent: 20,
    ...extra,
  };
}

/** Trains a real model at the simulator so inference has something to serve. */
export const trainSimulatorModel = (sim: RunningSimulator) => trainModel(sim, { suffix: 'api' });
