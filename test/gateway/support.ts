import { type ApiOptions, buildApi, type ChatProvider, profileChatProvider } from '@tuneline/api';
import { type Catalogue, defaultCatalogue } from '@tuneline/dataset';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';

export const ADMIN_KEY = 'admin-key-for-gateway-tests-0123456789';

/** A test database, Redis, the simulator and an API over them (the gateway's tests share this set-up). */
export interface GatewayRig {
  t: TestDatabase;
  redis: Redis;
  sim: RunningSimulator;
  app: Awaited<ReturnType<typeof buildApi>>;
  prefix: string;
  close(): Promise<void>;
}

export async function startRig(
  opts: {
    /** Wraps the real simulator-backed provider (a gate, a counter); the simulator still answers. */
    wrapProvider?: (provider: ChatProvider) => ChatProvider;
    catalogue?: Catalogue;
    /** A pino logger (the API logs nothing without one). */
    logger?: ApiOptions['logger'];
  } = {},
): Promise<GatewayRig> {
  const t = await createTestDatabase();
  const redis = createRedis(redisUrl(), 'producer');
  const prefix = testPrefix();
  const sim = await startSimulator({ speed: 100_000, seed: 11 });
  const profile = createProvider(
    providerEnvSchema.parse({ PROVIDER: 'simulator', SIMULATOR_URL: sim.url, SIMULATOR_API_KEY: sim.apiKey }),
  );
  const provider = profileChatProvider(profile);
  const app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: prefix,
    catalogue: opts.catalogue ?? defaultCatalogue,
    provider: opts.wrapProvider ? opts.wrapProvider(provider) : provider,
    adminKey: ADMIN_KEY,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  return {
    t,
    redis,
    sim,
    app,
    prefix,
    async close() {
      await app.close();
      await sim.close();
      redis.disconnect();
      await t.drop();
    },
  };
}

/** Trains a real model at the simulator so the gateway has something to serve. */
export async function trainSimulatorModel(sim: RunningSimulator): Promise<string> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  const lines = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'system', content: 'Extract fields as JSON.' },
        { role: 'user', content: `INVOICE ${1000 + i}\nTotal: ${i + 1}0.00 EUR` },
        { role: 'assistant', content: JSON.stringify({ total: (i + 1) * 10 }) },
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
    suffix: 'gw',
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

/** Chat completions the simulator received (its request log), for "one provider call" checks. */
export function simulatorChatCalls(sim: RunningSimulator): number {
  return sim.admin.state().faultLog.filter((e) => e.method === 'POST' && e.path.endsWith('/chat/completions'))
    .length;
}
