import { queues, RETRAIN_SCHEDULER_ID } from '@tuneline/contracts';
import { checkTrainingProfile, retrainCheckStage } from '@tuneline/dataset-builder/retrain';
import { startRetrainScheduler } from '@tuneline/dataset-builder/retrain-scheduler';
import { listProfileVersions } from '@tuneline/db';
import { createLogger } from '@tuneline/runtime';
import { Queue } from 'bullmq';
import pg from 'pg';
import { afterAll, describe, expect } from 'vitest';
import { makeLicense } from '../api/fixtures.ts';
import { flushPrefix, redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { builderDeps, drainOutbox, ingest, invoice, requestMessages, saveProfile } from './support.ts';

let t: TestDatabase;
let env: ReturnType<typeof builderDeps>;

test.beforeAll(async ({ database }) => {
  t = database;
  env = builderDeps(t.db);
});

afterAll(async () => {
  env?.cleanup();
});

const documents = (n: number, from = 0) => Array.from({ length: n }, (_, i) => invoice(`s${from + i}`));

describe('the re-train check', () => {
  it('starts exactly one version when two checks race and a third dies holding the profile mid-decision', async () => {
    await makeLicense(t.db, 'lic-race');
    const profile = await saveProfile(t.db, 'lic-race');
    await ingest(t.db, 'lic-race', documents(80));

    // A check that locked the profile and then died before committing (its backend is killed).
    const dying = new pg.Client({ connectionString: t.url });
    await dying.connect();
    dying.on('error', () => {});
    await dying.query('BEGIN');
    await dying.query('SELECT id FROM training_profiles WHERE id = $1 FOR UPDATE', [profile.id]);
    const { rows } = await dying.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');

    const racing = Promise.all([
      checkTrainingProfile(env.deps, profile.id, 'policy'),
      checkTrainingProfile(env.deps, profile.id, 'policy'),
    ]);
    // Both wait on the dead check's lock until its backend goes.
    await new Promise((r) => setTimeout(r, 300));
    const admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
    await admin.end();
    await dying.end().catch(() => {});

    const results = await racing;
    expect(results.map((r) => r?.decision.action).sort()).toEqual(['train', 'wait']);
    expect(results.find((r) => r?.decision.action === 'wait')?.decision.reason).toMatch(
      /^0 new or changed documents since version 1/,
    );
    const versions = await listProfileVersions(t.db, profile);
    expect(versions.map((v) => v.version)).toEqual([1]);
    const requests = requestMessages(await drainOutbox(t.db)).filter(
      (m) => m.request.licenseId === 'lic-race',
    );
    expect(requests.map((m) => m.request.requestId)).toEqual(['profile-invoices-v1']);
  });

  it('records a refusal over the monthly budget on the profile and starts nothing', async () => {
    await makeLicense(t.db, 'lic-budget');
    const profile = await saveProfile(t.db, 'lic-budget', {
      policy: { minNewDocuments: 10, minIntervalHours: 0, monthlyBudgetCredits: 1 },
    });
    await ingest(t.db, 'lic-budget', documents(40));
    const check = await checkTrainingProfile(env.deps, profile.id, 'policy');
    expect(check?.decision.action).toBe('refuse');
    expect(check?.decision.reason).toMatch(
      /^estimated \d+ credits would exceed the monthly budget of 1 \(0 used this month\)$/,
    );
    expect(await listProfileVersions(t.db, profile)).toEqual([]);
    const stored = await t.db
      .selectFrom('training_profiles')
      .select(['last_decision', 'last_decision_reason'])
      .where('id', '=', profile.id)
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ last_decision: 'refuse', last_decision_reason: check?.decision.reason });
  });
});

describe('the re-train scheduler (BullMQ job scheduler on the dataset-builder)', { timeout: 60_000 }, () => {
  it('is one scheduler for two replicas, comes back after Redis loses its data, and its checks start one version', async ({
    prefix,
    redis,
    stages,
  }) => {
    await makeLicense(t.db, 'lic-sched');
    const profile = await saveProfile(t.db, 'lic-sched');
    await ingest(t.db, 'lic-sched', documents(60, 1_000));
    const log = createLogger('test', 'silent');
    const opts = { redisUrl: redisUrl(), prefix, everyMs: 300, log, reassertMs: 500 };
    const replicas = [await startRetrainScheduler(opts), await startRetrainScheduler(opts)];
    const queue = new Queue(queues['retrain-check'].name, { connection: redis, prefix });
    const checks = await Promise.all(
      [0, 1].map(() =>
        stages.start(retrainCheckStage, env.deps, {
          concurrency: 2,
          timers: false,
          outboxIntervalMs: 60_000,
        }),
      ),
    );
    try {
      expect((await queue.getJobSchedulers()).map((s) => s.key)).toEqual([RETRAIN_SCHEDULER_ID]);
      await waitFor(async () => (await listProfileVersions(t.db, profile)).length > 0, 20_000, 'version 1');

      await flushPrefix(redis, prefix);
      expect(await queue.getJobSchedulers()).toEqual([]);
      await waitFor(async () => (await queue.getJobSchedulers()).length === 1, 20_000, 'the scheduler back');
      // More checks ran (each 300 ms) and none started a second version: nothing new was stored.
      const before = await queue.getJobCountByTypes('completed');
      await waitFor(
        async () => (await queue.getJobCountByTypes('completed')) > before + 2,
        20_000,
        'more checks',
      );
      expect((await listProfileVersions(t.db, profile)).map((v) => v.version)).toEqual([1]);
    } finally {
      await Promise.all(checks.map((s) => stages.close(s, 5_000)));
      await Promise.all(replicas.map((r) => r.close()));
      await queue.close();
    }
  });
});
