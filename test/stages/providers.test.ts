import { fineTuneRequestMessage } from '@tuneline/contracts';
import { loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { setLicenseProvider } from '@tuneline/db';
import { startSmtpServer } from '@tuneline/harness';
import {
  createProviderSet,
  ProviderNotConfiguredError,
  type ProviderSet,
  providerEnvSchema,
} from '@tuneline/provider';
import { type RecordedResponse, type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  seedLicense,
  startOuterStages,
  startPipeline,
  tempStorage,
} from './harness.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let providers: ProviderSet;
const created: RecordedResponse[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({
    port: 0,
    seed: 25,
    speed: 2_000,
    onResponse: (r) => {
      if (r.method === 'POST' && /fine_tuning\/jobs$|fine-tunes$/.test(r.url.split('?')[0] ?? ''))
        created.push(r);
    },
  });
  // No real credentials: the simulator serves every provider, each in its own dialect.
  providers = createProviderSet(
    providerEnvSchema.parse({
      SIMULATOR_URL: sim.url,
      SIMULATOR_API_KEY: sim.apiKey,
      PROVIDER_MAX_RETRIES: '1',
    }),
  );
  expect(providers.configured().sort()).toEqual(['azure', 'openai', 'together']);
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider: providers.defaultProfile,
    providers,
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await startOuterStages(pipeline.runner, {
    db: tdb.db,
    storage: files.storage,
    provider: providers.defaultProfile,
    smtpUrl: smtp.url,
  });
});

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
  await tdb?.drop();
});

async function submit(licenseId: string, baseModel: string, extra: Record<string, unknown> = {}) {
  const input = requestInput({
    requestId: `req-${licenseId}`,
    licenseId,
    autoTrain: true,
    baseModel,
    job: { description: licenseId, notifyEmails: `${licenseId}@example.com`, hyperparameters: 'auto' },
    ...extra,
  });
  const request = fineTuneRequestMessage({ request: input, correlationId: `corr-${licenseId}` });
  await pipeline.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);
}

const availableOf = (licenseId: string) =>
  waitFor(
    async () =>
      tdb.db
        .selectFrom('fine_tunes')
        .selectAll()
        .where('license_id', '=', licenseId)
        .where('available', '=', true)
        .executeTakeFirst(),
    30_000,
    `the model of ${licenseId}`,
  );

describe('a provider per license, through the six stages', () => {
  it('trains each license at its own provider, charged once, with an e-mail each', async () => {
    await seedLicense(tdb.db, 'lic-default', 1_000_000n);
    await seedLicense(tdb.db, 'lic-azure', 1_000_000n);
    await seedLicense(tdb.db, 'lic-together', 1_000_000n);
    await setLicenseProvider(tdb.db, 'lic-azure', 'azure');
    await setLicenseProvider(tdb.db, 'lic-together', 'together');
    await submit('lic-default', 'gpt-4o-mini-2024-07-18');
    await submit('lic-azure', 'gpt-4o-mini-2024-07-18');
    await submit('lic-together', 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');

    const byDefault = await availableOf('lic-default');
    const byAzure = await availableOf('lic-azure');
    const byTogether = await availableOf('lic-together');
    expect([byDefault.provider, byAzure.provider, byTogether.provider]).toEqual([null, 'azure', 'together']);
    for (const f of [byDefault, byAzure, byTogether]) {
      expect(f.status).toBe('succeeded');
      expect(BigInt(f.credits_charged ?? '0')).toBeGreaterThan(0n);
    }
    // Each job was created once, in its provider's dialect.
    const dialects = created
      .filter((r) => r.status === 200)
      .map((r) => `${r.dialect}:${r.url.split('?')[0]}`);
    expect(dialects.filter((d) => d === 'openai:/v1/fine_tuning/jobs')).toHaveLength(1);
    expect(dialects.filter((d) => d === 'azure:/openai/fine_tuning/jobs')).toHaveLength(1);
    expect(dialects.filter((d) => d === 'openai:/together/v1/fine-tunes')).toHaveLength(1);
    const together = sim.admin.together().jobs;
    expect(together).toHaveLength(1);
    expect(byTogether.provider_job_id).toBe(together[0]?.id);
    for (const id of ['lic-default', 'lic-azure', 'lic-together']) {
      await waitFor(
        async () => smtp.received.find((m) => m.to.includes(`${id}@example.com`)),
        10_000,
        `mail ${id}`,
      );
    }
    const posts = await tdb.db
      .selectFrom('ledger_transfers')
      .select(['fine_tune_id'])
      .where('kind', '=', 'post')
      .execute();
    expect(posts).toHaveLength(3);
  });

  it('a request naming a provider the deployment cannot reach fails with the reason on its dataset', async () => {
    const onlyOpenai = {
      for: (p: string | null) => {
        if (p === 'together') throw new ProviderNotConfiguredError('together');
        return providers.for(p);
      },
    };
    // A pipeline whose uploader knows no Together: the dataset and its fine-tune say why.
    const narrow = await startPipeline({
      db: tdb.db,
      redisUrl: redisUrl(),
      prefix: `${testPrefix()}n`,
      provider: providers.defaultProfile,
      providers: onlyOpenai,
      storage: files.storage,
      stages: ['uploader'],
    });
    try {
      await narrow.runner.start(datasetBuilderStage, {
        db: tdb.db,
        log: quietLog,
        storage: files.storage,
        catalogue: loadCatalogue({}),
      });
      await seedLicense(tdb.db, 'lic-x', 1_000_000n);
      const input = requestInput({
        requestId: 'req-x',
        licenseId: 'lic-x',
        autoTrain: true,
        provider: 'together',
        baseModel: 'Qwen/Qwen2.5-7B-Instruct',
        job: { description: 'x', notifyEmails: 'x@example.com', hyperparameters: 'auto' },
      });
      const request = fineTuneRequestMessage({ request: input, correlationId: 'corr-x' });
      await narrow.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);
      const dataset = await waitFor(
        async () =>
          tdb.db
            .selectFrom('datasets')
            .selectAll()
            .where('license_id', '=', 'lic-x')
            .where('status', '=', 'upload_failed')
            .executeTakeFirst(),
        20_000,
        'the dataset to fail',
      );
      expect(dataset.provider).toBe('together');
      expect(JSON.stringify(dataset.errors)).toMatch(/not configured.*TOGETHER_API_KEY/);
    } finally {
      await narrow.close();
    }
  });
});
