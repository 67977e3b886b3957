import { randomUUID } from 'node:crypto';
import {
  billingSettleJobId,
  billingSettleMessage,
  notifySendJobId,
  notifySendMessage,
  queues,
} from '@tuneline/contracts';
import { inTransaction, uncapturedOutboxWrites, writeOutbox } from '@tuneline/db';
import {
  createLogger,
  createMetrics,
  PermanentError,
  RateLimitedError,
  type RunningStage,
  type Stage,
  type StageDeps,
} from '@tuneline/runtime';
import { Queue } from 'bullmq';
import { afterAll, describe, expect } from 'vitest';
import { type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import type { StageRunner, StageRunnerOptions } from '../support/stage-runner.ts';

describe('stage worker runtime', () => {
  let tdb: TestDatabase;
  let runner: StageRunner;
  let queue: Queue;
  let running: RunningStage;
  const metrics = createMetrics('test');
  const seen: { id: string; attempt: number; at: number }[] = [];
  // notificationId → how many times the handler should throw before succeeding
  const failuresLeft = new Map<string, number>();
  let stage: Stage<'notify-send', StageDeps>;
  const deps = () => ({ db: tdb.db, log: createLogger('test', 'silent') });
  const stageOptions: StageRunnerOptions = { concurrency: 2, timers: false };

  test.beforeAll(async ({ database, redis, prefix, stages }) => {
    tdb = database;
    runner = stages;
    queue = new Queue('notify-send', { connection: redis, prefix });
    stage = {
      queue: 'notify-send',
      async handle(message, ctx) {
        seen.push({ id: message.notificationId, attempt: ctx.attempt, at: Date.now() });
        const next = billingSettleMessage({ fineTuneId: message.notificationId, correlationId: 'c' });
        if (message.correlationId === 'writes-outbox') {
          // Outside a capturing transaction: the relay publishes it.
          await writeOutbox(tdb.db, next);
        }
        if (message.correlationId.startsWith('commits-outbox')) {
          // Like a real stage: the next stage's message committed with the work.
          await inTransaction(tdb.db, (tx) => writeOutbox(tx, next));
          if (message.correlationId === 'commits-outbox-then-fails')
            throw new PermanentError('failed after commit');
        }
        const left = failuresLeft.get(message.notificationId) ?? 0;
        if (left === -1) throw new PermanentError('recipient rejected for good');
        if (left === -2) {
          failuresLeft.set(message.notificationId, 0);
          throw new RateLimitedError(300, 'provider rate limit (429)');
        }
        if (left > 0) {
          failuresLeft.set(message.notificationId, left - 1);
          throw new Error('transient failure');
        }
      },
    };
    running = await runner.start(stage, deps(), { ...stageOptions, metrics });
  });

  afterAll(async () => {
    await runner?.closeAll(5_000);
    await queue?.close();
  });

  const message = (id: string, correlationId = `corr-${id}`) =>
    notifySendMessage({ notificationId: id, correlationId }).payload;

  it('delivers a valid message to the handler once', async () => {
    const id = randomUUID();
    const job = await queue.add('notify-send', message(id), {
      ...queues['notify-send'].jobOptions,
      jobId: notifySendJobId(id),
    });
    await waitFor(async () => (await job.getState()) === 'completed', 10_000, 'job completion');
    expect(seen.filter((s) => s.id === id)).toHaveLength(1);
  });

  it('fails an invalid payload once, with the schema message naming the field, and never retries it', async () => {
    const job = await queue.add('notify-send', message('not-a-uuid', 'c'), {
      attempts: 5,
      backoff: { type: 'fixed', delay: 10 },
      jobId: 'notify-send-bad-1',
    });
    await waitFor(async () => (await job.getState()) === 'failed', 10_000, 'job failure');
    const failed = await queue.getJob(job.id!);
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toMatch(/^invalid notify-send message: notificationId: /);
    expect(seen.some((s) => s.id === 'not-a-uuid')).toBe(false);
  });

  it('retries a handler that throws, with backoff, until it succeeds', async () => {
    const id = randomUUID();
    failuresLeft.set(id, 2);
    const job = await queue.add('notify-send', message(id), {
      attempts: 5,
      backoff: { type: 'exponential', delay: 200 },
      jobId: notifySendJobId(id),
    });
    await waitFor(async () => (await job.getState()) === 'completed', 15_000, 'job completion after retries');
    const runs = seen.filter((s) => s.id === id);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Exponential: the second wait is longer than the first (200 ms then 400 ms nominal).
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(150);
    expect(runs[2]!.at - runs[1]!.at).toBeGreaterThanOrEqual(300);
  });

  it('fails a PermanentError at once, without spending the other attempts', async () => {
    const id = randomUUID();
    failuresLeft.set(id, -1);
    const job = await queue.add('notify-send', message(id), { attempts: 5, jobId: notifySendJobId(id) });
    await waitFor(async () => (await job.getState()) === 'failed', 10_000, 'job failure');
    const failed = await queue.getJob(job.id!);
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toBe('recipient rejected for good');
  });

  it('publishes outbox rows committed with a state change, once, with their deterministic job id', async () => {
    const id = randomUUID();
    await tdb.db
      .insertInto('outbox')
      .values({
        queue: 'notify-send',
        job_id: notifySendJobId(id),
        payload: JSON.stringify(message(id)),
      })
      .execute();
    expect(await running.relayOutbox()).toBe(1);
    expect(await running.relayOutbox()).toBe(0);
    await waitFor(async () => seen.some((s) => s.id === id), 10_000, 'outbox message handled');
    const rows = await tdb.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', notifySendJobId(id))
      .execute();
    expect(rows[0]?.published_at).not.toBeNull();
  });

  it('publishes what a handler wrote to the outbox as soon as the job ends (no timer running)', async ({
    redis,
    prefix,
  }) => {
    const id = randomUUID();
    await queue.add('notify-send', message(id, 'writes-outbox'), { jobId: notifySendJobId(id) });
    const settle = new Queue('billing-settle', { connection: redis, prefix });
    try {
      const job = await waitFor(() => settle.getJob(billingSettleJobId(id)), 10_000, 'the relayed job');
      expect(job.data).toMatchObject({ fineTuneId: id });
    } finally {
      await settle.close();
    }
  });

  it('publishes what the handler committed itself, without the relay, and marks the row published', async ({
    redis,
    prefix,
  }) => {
    const uncapturedBefore = uncapturedOutboxWrites();
    const settle = new Queue('billing-settle', { connection: redis, prefix });
    try {
      for (const correlationId of ['commits-outbox', 'commits-outbox-then-fails']) {
        const id = randomUUID();
        await queue.add('notify-send', message(id, correlationId), {
          jobId: notifySendJobId(id),
          attempts: 1,
        });
        // No relay runs here (no timers, nothing uncaptured): the job itself published it.
        const job = await waitFor(() => settle.getJob(billingSettleJobId(id)), 10_000, correlationId);
        expect(job.data).toMatchObject({ fineTuneId: id });
        await waitFor(
          async () =>
            (
              await tdb.db
                .selectFrom('outbox')
                .select('published_at')
                .where('job_id', '=', billingSettleJobId(id))
                .executeTakeFirst()
            )?.published_at,
          10_000,
          `${correlationId}: row marked published`,
        );
      }
      expect(uncapturedOutboxWrites()).toBe(uncapturedBefore);
    } finally {
      await settle.close();
    }
  });

  it('pauses the queue on a rate limit without spending an attempt, and counts the wait in /metrics', async () => {
    const id = randomUUID();
    failuresLeft.set(id, -2);
    const job = await queue.add('notify-send', message(id), { attempts: 1, jobId: notifySendJobId(id) });
    await waitFor(async () => (await job.getState()) === 'completed', 10_000, 'completion after the pause');
    const runs = seen.filter((s) => s.id === id);
    expect(runs.map((r) => r.attempt)).toEqual([1, 1]);
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(250);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/tuneline_rate_limit_waits_total\{queue="notify-send",service="test"\} 1\n/);
    expect(text).toMatch(
      /tuneline_rate_limit_wait_seconds_total\{queue="notify-send",service="test"\} 0\.3\n/,
    );
    expect(text).toMatch(
      /tuneline_jobs_total\{queue="notify-send",outcome="rate_limited",service="test"\} 1\n/,
    );
  });

  it('a rate limit pauses every worker of the queue, not only the one that hit it', async () => {
    // A second instance, as another process would be: it must also wait out the pause.
    const other = await runner.start(stage, deps(), stageOptions);
    try {
      const limited = randomUUID();
      failuresLeft.set(limited, -2);
      await queue.add('notify-send', message(limited), { attempts: 1, jobId: notifySendJobId(limited) });
      const first = await waitFor(
        async () => seen.find((s) => s.id === limited),
        10_000,
        'the rate-limited run',
      );
      await new Promise((r) => setTimeout(r, 50)); // the pause is set right after the handler throws
      const next = randomUUID();
      await queue.add('notify-send', message(next), { jobId: notifySendJobId(next) });
      const run = await waitFor(
        async () => seen.find((s) => s.id === next),
        10_000,
        'the job after the pause',
      );
      expect(run.at - first.at).toBeGreaterThanOrEqual(250);
    } finally {
      await runner.close(other, 5_000);
    }
  });

  it('reports the depth of its queue per state, read from Redis when /metrics is scraped', async () => {
    const id = randomUUID();
    await queue.add('notify-send', message(id), { jobId: notifySendJobId(id), delay: 60_000 });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/tuneline_queue_jobs\{queue="notify-send",state="delayed",service="test"\} 1\n/);
    // The earlier tests left exactly three failed jobs: the invalid payload, the permanent error and
    // the permanent error after a commit.
    expect(text).toMatch(/tuneline_queue_jobs\{queue="notify-send",state="failed",service="test"\} 3\n/);
    expect(text).toMatch(/tuneline_queue_jobs\{queue="notify-send",state="waiting",service="test"\} 0\n/);
    await queue.remove(notifySendJobId(id));
  });
});
