// Azure OpenAI's job statuses: its extra `pending` and `paused` map cleanly, unknown ones fail clearly,
// and the azure profile reads them through the official SDK against the simulator's Azure dialect.
import {
  AZURE_JOB_STATUSES,
  azureJobStatus,
  createProvider,
  normalizeJob,
  type ProviderJob,
  providerEnvSchema,
  UnknownProviderStatusError,
} from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobReaching, processedTrainingFile } from './support.ts';

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 9, speed: 5_000 });
});
afterAll(async () => {
  await sim?.close();
});

describe('azure job statuses', () => {
  it('maps every Azure status, pending and paused included', () => {
    expect(Object.keys(AZURE_JOB_STATUSES).sort()).toEqual(
      [
        'validating_files',
        'queued',
        'running',
        'succeeded',
        'failed',
        'cancelled',
        'pending',
        'paused',
      ].sort(),
    );
    expect(azureJobStatus('pending')).toBe('queued');
    expect(azureJobStatus('paused')).toBe('paused');
    for (const s of ['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled'])
      expect(azureJobStatus(s)).toBe(s);
  });

  it('fails clearly on an unknown status, and leaves other providers alone', () => {
    expect(() => azureJobStatus('notRunning')).toThrow(UnknownProviderStatusError);
    expect(() => azureJobStatus('notRunning')).toThrow(/azure: unknown fine-tuning job status "notRunning"/);
    const job = { id: 'j', status: 'pending' } as unknown as ProviderJob;
    expect(normalizeJob('azure', job).status).toBe('queued');
    expect(normalizeJob('openai', job).status).toBe('pending');
  });

  it('reads jobs through the azure profile against the simulator', async () => {
    const azure = createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'azure',
        AZURE_OPENAI_ENDPOINT: sim.baseUrl,
        AZURE_OPENAI_API_KEY: sim.apiKey,
      }),
    );
    const file = await processedTrainingFile(azure, 'az.jsonl', 10, { timeoutMs: 10_000 });
    const job = await azure.createJob({
      model: 'gpt-4o-mini-2024-07-18',
      trainingFile: file.id,
      metadata: { fine_tune_id: 'ft-az' },
    });
    const done = await jobReaching(azure, job.id, 'succeeded', 15_000, 'the azure job');
    expect(done.fine_tuned_model).toBeTruthy();
    expect((await azure.listJobs()).data.every((j) => Object.hasOwn(AZURE_JOB_STATUSES, j.status))).toBe(
      true,
    );
  });
});
