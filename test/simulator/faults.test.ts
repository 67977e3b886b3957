// Seeded fault injection: reproducible sequences, 429s with Retry-After, 500s, dropped connections and
// "lost response" creates where the job exists although the client saw an error.
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { loadConformanceChecker, uploadTrainingFile, withSimulator } from './support.ts';

/** Outcome of each of `n` plain requests: an HTTP status, or 'drop' for a dropped connection. */
async function requestSequence(url: string, n: number): Promise<Array<number | 'drop'>> {
  const out: Array<number | 'drop'> = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await fetch(`${url}/models`, { headers: { authorization: 'Bearer sk-sim' } });
      await res.arrayBuffer();
      out.push(res.status);
    } catch {
      out.push('drop');
    }
  }
  return out;
}

describe('fault injection', () => {
  const faults = { rate429: 0.2, rate500: 0.15, dropRate: 0.1 };

  it('gives the same fault sequence for the same seed, and a different one for another seed', async () => {
    const run = async (seed: number) => {
      return await withSimulator({ seed, faults }, async (sim) => {
        const statuses = await requestSequence(sim.url, 60);
        return { statuses, log: sim.admin.state().faultLog.map((f) => f.fault) };
      });
    };
    const a = await run(99);
    const b = await run(99);
    const c = await run(100);
    expect(a.statuses).toEqual(b.statuses);
    expect(a.log).toEqual(b.log);
    expect(c.statuses).not.toEqual(a.statuses);
    // Every kind of fault shows up in 60 requests at these rates.
    expect(new Set(a.statuses)).toEqual(new Set([200, 429, 500, 'drop']));
  });

  it('restarts the sequence when the admin endpoint sets a seed', async () => {
    await withSimulator({ seed: 1 }, async (sim) => {
      const configure = () =>
        fetch(`${sim.baseUrl}/_sim/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...faults, seed: 5 }),
        });
      expect((await configure()).status).toBe(200);
      const first = await requestSequence(sim.url, 30);
      await configure();
      expect(await requestSequence(sim.url, 30)).toEqual(first);
      const state = (await (await fetch(`${sim.baseUrl}/_sim/state`)).json()) as {
        faults: { rate429: number };
      };
      expect(state.faults.rate429).toBe(0.2);
    });
  });

  it('answers 429 with Retry-After and x-ratelimit headers in the OpenAI envelope', async () => {
    await withSimulator({ faults: { rate429: 1, retryAfterSeconds: 7 } }, async (sim, client) => {
      const err = (await client.models.list().catch((e: unknown) => e)) as InstanceType<
        typeof OpenAI.RateLimitError
      >;
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(err.headers.get('retry-after')).toBe('7');
      expect(err.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(err.headers.get('x-request-id')).toMatch(/^req_/);
      expect(err.code).toBe('rate_limit_exceeded');
      expect(loadConformanceChecker().check(sim.recorded).failures).toEqual([]);
    });
  });

  it('drops connections (the SDK sees a connection error)', async () => {
    await withSimulator({ faults: { dropRate: 1 } }, async (_sim, client) => {
      expect(await client.models.list().catch((e: unknown) => e)).toBeInstanceOf(OpenAI.APIConnectionError);
    });
  });

  it.each(['500', 'drop'] as const)('creates the job but loses the answer (%s)', async (mode) => {
    await withSimulator({ seed: 8 }, async (sim, client) => {
      const training_file = await uploadTrainingFile(client);
      sim.admin.setFaults({ lostCreateRate: 1, lostCreateMode: mode });
      const err = await client.fineTuning.jobs
        .create({
          model: 'gpt-4o-mini-2024-07-18',
          training_file,
          metadata: { fine_tune_id: 'ft-lost' },
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(mode === '500' ? OpenAI.InternalServerError : OpenAI.APIConnectionError);
      sim.admin.setFaults({});
      const found = await client.fineTuning.jobs.list({ metadata: { fine_tune_id: 'ft-lost' } });
      expect(found.data).toHaveLength(1);
      expect(sim.admin.state().faultLog.map((f) => f.fault)).toContain(`lost-create-${mode}`);
      expect(loadConformanceChecker().check(sim.recorded).failures).toEqual([]);
    });
  });
});

describe('determinism', () => {
  it('gives the same file, job, event, checkpoint and model ids for the same seed and requests', async () => {
    const run = async (seed: number) => {
      return await withSimulator({ seed, speed: 2000 }, async (_sim, client) => {
        const training_file = await uploadTrainingFile(client);
        const job = await client.fineTuning.jobs.create({
          model: 'gpt-4o-mini-2024-07-18',
          training_file,
          suffix: 'd',
        });
        let done = job;
        while (!['succeeded', 'failed', 'cancelled'].includes(done.status)) {
          await new Promise((r) => setTimeout(r, 10));
          done = await client.fineTuning.jobs.retrieve(job.id);
        }
        const events = (await client.fineTuning.jobs.listEvents(job.id, { limit: 100 })).data.map(
          (e) => e.id,
        );
        const checkpoints = (await client.fineTuning.jobs.checkpoints.list(job.id)).data.map((c) => c.id);
        return {
          file: training_file,
          job: job.id,
          seed: done.seed,
          model: done.fine_tuned_model,
          events,
          checkpoints,
          results: done.result_files,
        };
      });
    };
    const a = await run(77);
    expect(await run(77)).toEqual(a);
    expect((await run(78)).job).not.toBe(a.job);
  });
});
