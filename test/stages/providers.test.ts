import { getEvaluationRunByFineTune, setLicenseProvider } from '@tuneline/db';
import {
  createProviderSet,
  ProviderNotConfiguredError,
  type ProviderSet,
  providerEnvSchema,
} from '@tuneline/provider';
import type { RecordedResponse } from '@tuneline/simulator';
import { describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { redisUrl, testPrefix } from '../support/context.ts';
import { test } from '../support/fixtures.ts';
import {
  availableFineTune,
  datasetInStatus,
  enqueueRequest,
  seedLicense,
  startOuterStages,
  startPipeline,
} from './harness.ts';
import { fileRig } from './rig.ts';

let providers: ProviderSet;
const created: RecordedResponse[] = [];
const rig = fileRig({
  simulator: {
    seed: 25,
    speed: 2_000,
    onResponse: (r) => {
      if (r.method === 'POST' && /fine_tuning\/jobs$|fine-tunes$/.test(r.url.split('?')[0] ?? ''))
        created.push(r);
    },
  },
  profiles: (sim) => {
    // No real credentials: the simulator serves every provider, each in its own dialect.
    providers = createProviderSet(
      providerEnvSchema.parse({
        SIMULATOR_URL: sim.url,
        SIMULATOR_API_KEY: sim.apiKey,
        PROVIDER_MAX_RETRIES: '1',
      }),
    );
    return { provider: providers.defaultProfile, providers };
  },
  outer: {},
});

function submit(licenseId: string, baseModel: string) {
  const input = requestInput({
    requestId: `req-${licenseId}`,
    licenseId,
    autoTrain: true,
    baseModel,
    // A testing file, so each model is evaluated (at its own provider).
    testPercent: 20,
    job: { description: licenseId, notifyEmails: `${licenseId}@example.com`, hyperparameters: 'auto' },
  });
  return rig.submit(input, `corr-${licenseId}`);
}

describe('a provider per license, through the six stages', () => {
  test('trains each license at its own provider, charged once, with an e-mail each', async ({ db }) => {
    expect(providers.configured().sort()).toEqual(['azure', 'openai', 'together']);
    await seedLicense(db, 'lic-default', 1_000_000n);
    await seedLicense(db, 'lic-azure', 1_000_000n);
    await seedLicense(db, 'lic-together', 1_000_000n);
    await setLicenseProvider(db, 'lic-azure', 'azure');
    await setLicenseProvider(db, 'lic-together', 'together');
    await submit('lic-default', 'gpt-4o-mini-2024-07-18');
    await submit('lic-azure', 'gpt-4o-mini-2024-07-18');
    await submit('lic-together', 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');

    const byDefault = await availableFineTune(db, 'lic-default', 30_000, 'the model of lic-default');
    const byAzure = await availableFineTune(db, 'lic-azure', 30_000, 'the model of lic-azure');
    const byTogether = await availableFineTune(db, 'lic-together', 30_000, 'the model of lic-together');
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
    const together = rig.sim.admin.together().jobs;
    expect(together).toHaveLength(1);
    expect(byTogether.provider_job_id).toBe(together[0]?.id);
    for (const id of ['lic-default', 'lic-azure', 'lic-together']) await rig.mailTo(`${id}@example.com`);
    // Each was evaluated at its own provider (the e-mail waited for it): Together's models in its dialect.
    for (const f of [byDefault, byAzure, byTogether])
      expect((await getEvaluationRunByFineTune(db, f.id))?.status, `${f.provider} evaluation`).toBe(
        'succeeded',
      );
    const togetherChats = rig.sim.admin
      .chatRequests()
      .filter((r) => r.model === byTogether.fine_tuned_model || r.model === byTogether.base_model);
    expect(togetherChats.length).toBeGreaterThan(0);
    expect(new Set(togetherChats.map((r) => r.dialect))).toEqual(new Set(['together']));
    const posts = await db
      .selectFrom('ledger_transfers')
      .select(['fine_tune_id'])
      .where('kind', '=', 'post')
      .execute();
    expect(posts).toHaveLength(3);
  });

  test('a request naming a provider the deployment cannot reach fails with the reason on its dataset', async ({
    db,
    redis,
  }) => {
    const onlyOpenai = {
      for: (p: string | null) => {
        if (p === 'together') throw new ProviderNotConfiguredError('together');
        return providers.for(p);
      },
    };
    // A pipeline whose uploader knows no Together: the dataset and its fine-tune say why.
    const narrow = await startPipeline({
      db,
      redisUrl: redisUrl(),
      prefix: `${testPrefix()}n`,
      provider: providers.defaultProfile,
      providers: onlyOpenai,
      storage: rig.files.storage,
      stages: ['uploader'],
    });
    try {
      await startOuterStages(narrow.runner, { db, storage: rig.files.storage, stages: ['dataset-builder'] });
      await seedLicense(db, 'lic-x', 1_000_000n);
      const input = requestInput({
        requestId: 'req-x',
        licenseId: 'lic-x',
        autoTrain: true,
        provider: 'together',
        baseModel: 'Qwen/Qwen2.5-7B-Instruct',
        job: { description: 'x', notifyEmails: 'x@example.com', hyperparameters: 'auto' },
      });
      await enqueueRequest({ redis, prefix: narrow.runner.prefix }, input, 'corr-x');
      const dataset = await datasetInStatus(db, 'lic-x', 'upload_failed', 20_000, 'the dataset to fail');
      expect(dataset.provider).toBe('together');
      expect(JSON.stringify(dataset.errors)).toMatch(/not configured.*TOGETHER_API_KEY/);
    } finally {
      await narrow.close();
    }
  });
});
