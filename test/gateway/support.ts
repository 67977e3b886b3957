import { type ApiOptions, buildApi, type ChatProvider, profileChatProvider } from '@tuneline/api';
import { type Catalogue, defaultCatalogue } from '@tuneline/dataset';
import {
  createChatHttpClient,
  createProvider,
  createProviderProfile,
  providerEnvSchema,
  resolveProviderSettings,
} from '@tuneline/provider';
import { createRedis } from '@tuneline/runtime';
import { type RecordedResponse, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import OpenAI from 'openai';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { redisUrl, type TestDatabase } from '../support/context.ts';
import { trainSimulatorModel as trainModelFrom } from '../support/simulator-models.ts';

/**
 * What a gateway or rig runs on: the file's `database` and `prefix` fixtures (test/support/fixtures.ts),
 * which drop the database and delete the prefix's keys after the file; `close()` leaves both alone.
 */
export interface GatewayScope {
  database: TestDatabase;
  prefix: string;
}

/**
 * The gateway as an app sees it: the API listening on a real port, the `openai` SDK pointed at it,
 * and behind it the simulator over HTTP (OpenAI's dialect, or Azure's through AzureOpenAI).
 */
export interface Gateway {
  t: TestDatabase;
  sim: RunningSimulator;
  /** The simulator's answers as it sent them. */
  simResponses: RecordedResponse[];
  /** The SDK with license A's key, at the gateway. */
  client: OpenAI;
  /** A fine-tuned model the simulator trained, active for license A. */
  model: string;
  fineTuneId: string;
  licenseA: { id: string; key: string };
  licenseB: { id: string; key: string };
  gatewayUrl: string;
  close(): Promise<void>;
}

export const INVOICES = Array.from({ length: 12 }, (_, i) => ({
  user: `INVOICE ${1000 + i}\nSupplier: Acme\nTotal: ${i + 1}0.00 EUR`,
  answer: { invoice_number: `${1000 + i}`, supplier: 'Acme', total: (i + 1) * 10 },
}));

/** The gateway's own model: trained on INVOICES (number, supplier and total). */
function trainModel(sim: RunningSimulator): Promise<string> {
  const examples = INVOICES.map((x) => [
    { role: 'system' as const, content: 'Extract the invoice fields as JSON.' },
    { role: 'user' as const, content: x.user },
    { role: 'assistant' as const, content: JSON.stringify(x.answer) },
  ]);
  return trainModelFrom(sim, { suffix: 'gateway', examples });
}

/**
 * Its licenses are `lic-gw-<dialect>-a` and `-b`, so both dialects' gateways can share a file's database.
 */
export async function startGateway(
  { database: t, prefix }: GatewayScope,
  dialect: 'openai' | 'azure' = 'openai',
  /** More of the API's options (a moved clock, ...). */
  extra: Partial<ApiOptions> = {},
): Promise<Gateway> {
  const redis: Redis = createRedis(redisUrl(), 'producer');
  const simResponses: RecordedResponse[] = [];
  const sim = await startSimulator({ speed: 100_000, seed: 7, onResponse: (r) => simResponses.push(r) });
  const common = { webhookSecret: undefined, maxRetries: 0, timeoutMs: 10_000 };
  const profile =
    dialect === 'azure'
      ? createProviderProfile({
          kind: 'azure',
          apiKey: sim.apiKey,
          endpoint: sim.baseUrl,
          apiVersion: '2025-04-01-preview',
          common,
        })
      : createProviderProfile({ kind: 'simulator', apiKey: sim.apiKey, baseURL: sim.url, common });
  const app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: prefix,
    catalogue: defaultCatalogue,
    provider: profileChatProvider(profile),
    ...extra,
  });
  const gatewayUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  const model = await trainModel(sim);
  const licenseA = await makeLicense(t.db, `lic-gw-${dialect}-a`);
  const licenseB = await makeLicense(t.db, `lic-gw-${dialect}-b`);
  const fineTuneId = await makeFineTune(t.db, licenseA.id, await makeDataset(t.db, licenseA.id, 'uploaded'), {
    model,
    active: true,
  });
  const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: licenseA.key, maxRetries: 0 });
  return {
    t,
    sim,
    simResponses,
    client,
    model,
    fineTuneId,
    licenseA,
    licenseB,
    gatewayUrl,
    async close() {
      await app.close();
      await sim.close();
      redis.disconnect();
    },
  };
}

/** The usage rows metered for a fine-tune, oldest first. */
export async function meteredUsage(gw: Gateway, fineTuneId = gw.fineTuneId) {
  return gw.t.db
    .selectFrom('inference_usage')
    .select(['prompt_tokens', 'completion_tokens', 'credits'])
    .where('fine_tune_id', '=', fineTuneId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** The last chat request body the simulator received. */
export function lastReceived(gw: Gateway): Record<string, unknown> {
  const all = gw.sim.admin.chatRequests();
  const last = all.at(-1);
  if (!last) throw new Error('the simulator received no chat request');
  return last.body;
}

// ---------------------------------------------------------------------------------------------------
// The money side's rig (holds, metering, idempotency, rate limits): the API with a wrappable provider.

export const ADMIN_KEY = 'admin-key-for-gateway-tests-0123456789';

/** The file's database and prefix, Redis, the simulator and an API over them (the gateway's tests share this set-up). */
export interface GatewayRig {
  t: TestDatabase;
  redis: Redis;
  sim: RunningSimulator;
  app: Awaited<ReturnType<typeof buildApi>>;
  prefix: string;
  close(): Promise<void>;
}

export async function startRig(
  { database: t, prefix }: GatewayScope,
  opts: {
    /** Wraps the real simulator-backed provider (a gate, a counter); the simulator still answers. */
    wrapProvider?: (provider: ChatProvider) => ChatProvider;
    catalogue?: Catalogue;
    /** A pino logger (the API logs nothing without one). */
    logger?: ApiOptions['logger'];
    rateLimit?: ApiOptions['rateLimit'];
    /** The gateway's settings (cache TTL, hold commit, prompt count, ...). */
    gateway?: ApiOptions['gateway'];
  } = {},
): Promise<GatewayRig> {
  const redis = createRedis(redisUrl(), 'producer');
  const sim = await startSimulator({ speed: 100_000, seed: 11 });
  const providerEnv = providerEnvSchema.parse({
    PROVIDER: 'simulator',
    SIMULATOR_URL: sim.url,
    SIMULATOR_API_KEY: sim.apiKey,
    // As the API runs it (GATEWAY_PROVIDER_MAX_RETRIES): the provider's 429s reach the caller.
    PROVIDER_MAX_RETRIES: '0',
  });
  // As the API runs it: non-streamed calls over the keep-alive pool, streams through the SDK.
  const chatHttp = createChatHttpClient(resolveProviderSettings(providerEnv));
  const provider = profileChatProvider(createProvider(providerEnv), chatHttp);
  const app = await buildApi({
    db: t.db,
    redis,
    queuePrefix: prefix,
    catalogue: opts.catalogue ?? defaultCatalogue,
    provider: opts.wrapProvider ? opts.wrapProvider(provider) : provider,
    adminKey: ADMIN_KEY,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
    ...(opts.gateway ? { gateway: opts.gateway } : {}),
  });
  return {
    t,
    redis,
    sim,
    app,
    prefix,
    async close() {
      await app.close();
      chatHttp.close();
      await sim.close();
      redis.disconnect();
    },
  };
}

/** A gate forwarded calls wait at until the test opens it (a call held there sits between hold and settle). */
export interface Gate {
  open(): void;
  wait: Promise<void>;
}

export function shutGate(): Gate {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { open, wait };
}

/** For `startRig`'s wrapProvider: non-streamed calls wait at the gate `current()` returns, then go on. */
export function gatedProvider(current: () => Gate, onForward?: () => void) {
  return (real: ChatProvider): ChatProvider => ({
    async chatCompletion(body, opts) {
      onForward?.();
      await current().wait;
      return real.chatCompletion(body, opts);
    },
    streamChatCompletion: (body, opts) => real.streamChatCompletion(body, opts),
  });
}

/** A rig serving a model trained at the simulator, the gateway listening on a loopback port. */
export interface ServingRig extends GatewayRig {
  model: string;
  /** The gateway's address for the SDK (…/v1). */
  baseURL: string;
}

/** `startRig`, then a model trained at the simulator and the gateway listening. */
export async function startServingRig(
  scope: GatewayScope,
  opts: Parameters<typeof startRig>[1] = {},
): Promise<ServingRig> {
  const rig = await startRig(scope, opts);
  try {
    const model = await trainSimulatorModel(rig.sim);
    const baseURL = `${await rig.app.listen({ port: 0, host: '127.0.0.1' })}/v1`;
    return { ...rig, model, baseURL };
  } catch (err) {
    await rig.close();
    throw err;
  }
}

export interface GatedRig extends ServingRig {
  /** Shuts a new gate: non-streamed calls forwarded from now on wait at it until `openGate`. */
  shutGate(): void;
  openGate(): void;
}

/**
 * `startServingRig` with `gatedProvider`: the gate is open until `shutGate`; `onForward` is told of
 * every non-streamed call forwarded. Closing the rig opens the gate first.
 */
export async function startGatedRig(scope: GatewayScope, onForward?: () => void): Promise<GatedRig> {
  let gate = shutGate();
  gate.open();
  const rig = await startServingRig(scope, { wrapProvider: gatedProvider(() => gate, onForward) });
  return {
    ...rig,
    shutGate: () => {
      gate = shutGate();
    },
    openGate: () => gate.open(),
    close: async () => {
      gate.open();
      await rig.close();
    },
  };
}

/** A license with credits and an active fine-tune on `model`, and the SDK at the gateway with its key. */
export async function licenseWithModel(
  rig: GatewayRig,
  at: { model: string; baseURL: string },
  id: string,
  credits = 100_000n,
) {
  const lic = await makeLicense(rig.t.db, id, credits);
  const fineTuneId = await makeFineTune(rig.t.db, lic.id, await makeDataset(rig.t.db, lic.id, 'uploaded'), {
    model: at.model,
    active: true,
  });
  return { ...lic, fineTuneId, client: new OpenAI({ baseURL: at.baseURL, apiKey: lic.key, maxRetries: 0 }) };
}

/** Trains a real model at the simulator so the gateway has something to serve. */
export const trainSimulatorModel = (sim: RunningSimulator) => trainModelFrom(sim, { suffix: 'gw' });

/** Chat completion requests the simulator received (its own record), for "one provider call" checks. */
export function simulatorChatCalls(sim: RunningSimulator): number {
  return sim.admin.chatRequests().length;
}
