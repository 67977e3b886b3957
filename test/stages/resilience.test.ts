import { QUEUE_NAMES } from '@tuneline/contracts';
import { autoTrainFineTuneId, type Db, type FineTuneRow, getFineTune } from '@tuneline/db';
import type { RunningSimulator } from '@tuneline/simulator';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect } from 'vitest';
import { flushPrefix, redisUrl, testPrefix, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { enqueueUpload, seedLicense, seedReadyDataset, settleMessages } from './harness.ts';
import { type Rig, startRig } from './rig.ts';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'insufficient_credits'];

let db: Db;
let redis: Redis;

test.beforeAll(async ({ db: testDb, redis: client }) => {
  db = testDb;
  redis = client;
});

/** A rig of its own: a simulator at `speed`, the three provider stages on a prefix of their own. */
interface World extends Rig {
  prefix: string;
}

async function world(speed: number, seed: number): Promise<World> {
  const prefix = testPrefix();
  const rig = await startRig({ db, redisUrl: redisUrl(), prefix, simulator: { seed, speed } });
  return {
    ...rig,
    prefix,
    close: async () => {
      await rig.close();
      await flushPrefix(redis, prefix);
    },
  };
}

async function startMany(w: World, licenseId: string, n: number): Promise<string[]> {
  await seedLicense(db, licenseId, 100_000n);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const datasetId = await seedReadyDataset(db, { licenseId, storage: w.files.storage });
    await enqueueUpload(w.pipeline, datasetId);
    ids.push(autoTrainFineTuneId(datasetId));
  }
  return ids;
}

async function rows(ids: string[]): Promise<FineTuneRow[]> {
  return db.selectFrom('fine_tunes').selectAll().where('id', 'in', ids).execute();
}

async function allTerminal(ids: string[], timeoutMs: number): Promise<FineTuneRow[]> {
  try {
    return await waitUntilTerminal(ids, timeoutMs);
  } catch (err) {
    // Say where each one stopped: a timeout alone does not tell a slow machine from a lost chain.
    const r = await rows(ids);
    const where = r.map((f) => `${f.status}/${f.poll_count}${f.provider_job_id ? '' : '/no-job'}`).join(' ');
    throw new Error(`${(err as Error).message}; rows: ${where}`);
  }
}

async function waitUntilTerminal(ids: string[], timeoutMs: number): Promise<FineTuneRow[]> {
  return waitFor(
    async () => {
      const r = await rows(ids);
      return r.length === ids.length && r.every((f) => TERMINAL.includes(f.status)) ? r : null;
    },
    timeoutMs,
    `${ids.length} fine-tunes to finish`,
  );
}

async function failedJobs(prefix: string): Promise<number> {
  let failed = 0;
  for (const name of QUEUE_NAMES) {
    const q = new Queue(name, { connection: redis, prefix });
    failed += await q.getFailedCount();
    await q.close();
  }
  return failed;
}

function providerJobsPer(sim: RunningSimulator, ids: string[]): number[] {
  const jobs = sim.admin.state().jobs;
  return ids.map((id) => jobs.filter((j) => j.metadata?.fine_tune_id === id).length);
}

describe('stages under provider trouble', () => {
  it('a 429 storm with Retry-After fails no fine-tune and spends no attempts', {
    timeout: 150_000,
  }, async () => {
    const w = await world(2_000, 31);
    try {
      w.sim.admin.setFaults({ rate429: 0.4, retryAfterSeconds: 0.2 });
      const ids = await startMany(w, 'lic-storm', 5);
      const done = await allTerminal(ids, 200_000);
      expect(done.map((f) => f.status)).toEqual(ids.map(() => 'succeeded'));
      const throttled = w.sim.admin.state().faultLog.filter((f) => f.fault === '429').length;
      expect(throttled).toBeGreaterThan(10);
      expect(await failedJobs(w.prefix)).toBe(0);
      // Rate-limited runs go back to the queue without counting as attempts: every completed job was
      // started more often than it was attempted, and each needed exactly one counted attempt.
      let restarted = 0;
      for (const name of ['files-upload', 'finetune-create', 'finetune-poll'] as const) {
        const q = new Queue(name, { connection: redis, prefix: w.prefix });
        // A job's row can be terminal a moment before BullMQ records the job as completed: let the
        // queue settle before reading its completed jobs.
        const completed = await waitFor(
          async () => {
            if ((await q.getActiveCount()) > 0) return null;
            const jobs = await q.getCompleted(0, 1_000);
            return jobs.length > 0 ? jobs : null;
          },
          15_000,
          `completed ${name} jobs`,
        );
        await q.close();
        for (const job of completed) {
          expect(job.attemptsMade).toBe(1);
          if ((job.attemptsStarted ?? 0) > 1) restarted++;
        }
      }
      expect(restarted).toBeGreaterThan(0);
      expect(providerJobsPer(w.sim, ids)).toEqual(ids.map(() => 1));
    } finally {
      await w.close();
    }
  });

  it('Redis flushed with 20 fine-tunes in flight: all finish, one provider job and one settlement each', {
    timeout: 150_000,
  }, async () => {
    // Speed 10: a job runs for about 15 s, so all 20 are still in flight when Redis goes.
    const w = await world(10, 41);
    try {
      const ids = await startMany(w, 'lic-flush', 20);
      // In flight: some created at the provider, none finished yet.
      await waitFor(
        async () => (await rows(ids)).filter((f) => f.provider_job_id).length >= 5,
        20_000,
        'jobs created',
      );
      const before = await rows(ids);
      expect(before.some((f) => TERMINAL.includes(f.status))).toBe(false);
      expect(await flushPrefix(redis, w.prefix)).toBeGreaterThan(0);
      // What each stage does on start-up and on its timer: re-enqueue from Postgres.
      for (const stage of Object.values(w.pipeline.stages)) await stage?.recover();
      const done = await allTerminal(ids, 200_000);
      expect(done.map((f) => f.status)).toEqual(ids.map(() => 'succeeded'));
      expect(providerJobsPer(w.sim, ids)).toEqual(ids.map(() => 1));
      for (const f of done) {
        expect(await settleMessages(db, f.id)).toHaveLength(1);
        expect(await getFineTune(db, f.id)).toMatchObject({ finishedAt: expect.any(Date) });
      }
    } finally {
      await w.close();
    }
  });
});
