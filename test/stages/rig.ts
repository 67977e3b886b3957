import type { FineTuneRequestInput } from '@tuneline/contracts';
import { autoTrainFineTuneId, type Db, type FineTuneRecord, getFineTune } from '@tuneline/db';
import { type ReceivedMail, type SmtpTestServer, startSmtpServer } from '@tuneline/harness';
import type { ProviderProfile } from '@tuneline/provider';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '@tuneline/simulator';
import { afterAll } from 'vitest';
import { testRedis, waitFor } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import {
  DEFAULT_OUTER_STAGES,
  enqueueRequest,
  enqueueUpload,
  mailTo,
  type OuterStagesOptions,
  type Pipeline,
  type PipelineOptions,
  type StorageFixture,
  seedLicense,
  seedReadyDataset,
  startOuterStages,
  startPipeline,
  tempStorage,
} from './harness.ts';
import { makeProvider } from './provider.ts';

/** What every stage of a rig gets: a whole provider profile. */
export type RigProvider = ProviderProfile;

export interface RigOptions extends Omit<PipelineOptions, 'provider' | 'providers' | 'storage'> {
  db: Db;
  /** The simulator's settings (it listens on a free port). */
  simulator: Omit<SimulatorOptions, 'port'>;
  /** The profiles the stages get, given the simulator (default: makeProvider's simulator profile). */
  profiles?: (sim: RunningSimulator) => {
    provider: RigProvider;
    providers?: { for(provider: string | null): RigProvider };
  };
  /**
   * The stages around the provider ones (startOuterStages; none when absent), the evaluator on the
   * rig's provider. An e-mail server is started for the notifier.
   */
  outer?: Pick<OuterStagesOptions, 'stages' | 'evaluation' | 'publicUrl'>;
}

/** A simulator, temporary storage and the stages on them (startPipeline's, and any others asked for). */
export interface Rig {
  db: Db;
  sim: RunningSimulator;
  files: StorageFixture;
  provider: RigProvider;
  pipeline: Pipeline;
  /** Waits for an e-mail to `address` (at the e-mail server the rig's notifier sends to). */
  mailTo(address: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** Enqueues a fine-tune request through the typed producer, on the pipeline's prefix (enqueueRequest). */
  submit(input: FineTuneRequestInput, correlationId?: string): ReturnType<typeof enqueueRequest>;
  /** Closes the stages, then the simulator, the e-mail server and the storage. */
  close(): Promise<void>;
}

/**
 * Starts a rig for a file's tests, polling fast by default (300 ms; most tests follow a job without
 * webhooks). What did start is closed again when a later step fails.
 */
export async function startRig(opts: RigOptions): Promise<Rig> {
  const { simulator, profiles, outer, ...pipelineOptions } = opts;
  const closers: (() => unknown)[] = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const files = tempStorage();
    closers.push(() => files.cleanup());
    const outerStages = outer ? (outer.stages ?? DEFAULT_OUTER_STAGES) : [];
    const mailing = outerStages.includes('notifier') || outerStages.includes('lifecycle-sweep');
    const smtp = mailing ? await startSmtpServer() : undefined;
    if (smtp) closers.push(() => smtp.close());
    const redis = testRedis();
    closers.push(() => redis.disconnect());
    const sim = await startSimulator({ ...simulator, port: 0 });
    closers.push(() => sim.close());
    const chosen = profiles?.(sim) ?? { provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }) };
    const pipeline = await startPipeline({
      schedule: { intervalMs: 300, minIntervalMs: 100 },
      ...pipelineOptions,
      ...chosen,
      storage: files.storage,
    });
    closers.push(() => pipeline.close());
    if (outer) {
      await startOuterStages(pipeline.runner, {
        db: opts.db,
        storage: files.storage,
        provider: chosen.provider,
        ...(chosen.providers ? { providers: chosen.providers } : {}),
        ...(smtp ? { smtpUrl: smtp.url } : {}),
        ...outer,
      });
    }
    const mailServer = (): SmtpTestServer => {
      if (!smtp) throw new Error('this rig runs no notifier: no e-mail server');
      return smtp;
    };
    return {
      db: opts.db,
      sim,
      files,
      provider: chosen.provider,
      pipeline,
      mailTo: (address, timeoutMs) => mailTo(mailServer(), address, timeoutMs),
      submit: (input, correlationId) =>
        enqueueRequest({ redis, prefix: pipeline.runner.prefix }, input, correlationId),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A rig for this file's tests, on its `db` and `stages` fixtures: started before the file's first test
 * (before the file's own `beforeAll` hooks) and closed after its last. The object returned is filled in
 * when it starts.
 */
export function fileRig(opts: Omit<RigOptions, 'db' | 'runner' | 'redisUrl' | 'prefix'>): Rig {
  const rig = {} as Rig;
  test.beforeAll(async ({ db, stages }) => {
    Object.assign(rig, await startRig({ ...opts, db, runner: stages }));
  });
  afterAll(() => rig.close?.());
  return rig;
}

/**
 * Seeds a license (1,000 credits) and a ready dataset, queues its upload through `on` (default the rig's
 * pipeline) and waits until its fine-tune's provider job is recorded.
 */
export async function recordedFineTune(
  rig: Rig,
  licenseId: string,
  { on = rig.pipeline, timeoutMs = 20_000 }: { on?: Pipeline; timeoutMs?: number } = {},
): Promise<FineTuneRecord> {
  await seedLicense(rig.db, licenseId, 1_000n);
  const datasetId = await seedReadyDataset(rig.db, { licenseId, storage: rig.files.storage });
  await enqueueUpload(on, datasetId);
  const fineTuneId = autoTrainFineTuneId(datasetId);
  return waitFor(
    async () => {
      const row = await getFineTune(rig.db, fineTuneId);
      return row?.providerJobId ? row : null;
    },
    timeoutMs,
    'the provider job to be recorded',
  );
}
