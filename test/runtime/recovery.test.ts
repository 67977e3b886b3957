import { randomUUID } from 'node:crypto';
import { billingSettleJobId, billingSettleMessage, notifySendMessage } from '@tuneline/contracts';
import { createRedis, Publisher } from '@tuneline/runtime';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

// The recovery sweep republishes rows still waiting on a stage. A job id already held by a failed or
// completed job must not swallow that: the failed job is retried and the completed one replaced.
describe('recovery republish', () => {
  let prefix: string;
  let conn: Redis;
  let workerConn: Redis;
  let publisher: Publisher;
  let worker: Worker;
  const runs = new Map<string, number>();
  const failFirst = new Set<string>();

  test.beforeAll(async ({ prefix: ownPrefix }) => {
    prefix = ownPrefix;
    conn = createRedis(redisUrl(), 'worker');
    workerConn = createRedis(redisUrl(), 'worker');
    publisher = new Publisher(conn, prefix);
    worker = new Worker(
      'billing-settle',
      async (job: Job) => {
        const id = (job.data as { fineTuneId: string }).fineTuneId;
        runs.set(id, (runs.get(id) ?? 0) + 1);
        if (failFirst.delete(id)) throw new UnrecoverableError('outage');
      },
      { connection: workerConn, prefix },
    );
    await worker.waitUntilReady();
  });
  afterAll(async () => {
    await worker.close();
    await publisher.close();
    conn.disconnect();
    workerConn.disconnect();
  });

  const message = (id: string) => billingSettleMessage({ fineTuneId: id, correlationId: 'c' }).payload;
  const stateOf = async (id: string) =>
    (await publisher.queue('billing-settle').getJob(billingSettleJobId(id)))?.getState();

  it('adds a job that is missing (Redis lost it) and leaves one that is still waiting alone', async () => {
    const id = randomUUID();
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id), 60_000)).toBe(
      'added',
    );
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id), 60_000)).toBe(
      'present',
    );
  });

  it('retries a job that failed for good while its row still waits', async () => {
    const id = randomUUID();
    failFirst.add(id);
    await publisher.publish('billing-settle', billingSettleJobId(id), message(id));
    await waitFor(async () => (await stateOf(id)) === 'failed', 10_000, 'first failure');
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id))).toBe('retried');
    await waitFor(async () => (await stateOf(id)) === 'completed', 10_000, 'completion after retry');
    expect(runs.get(id)).toBe(2);
  });

  it('replaces a completed job when its row still waits', async () => {
    const id = randomUUID();
    await publisher.publish('billing-settle', billingSettleJobId(id), message(id));
    await waitFor(async () => (await stateOf(id)) === 'completed', 10_000, 'completion');
    // The sweep reads the row after the job finished: a later millisecond (a job that finished in the
    // very millisecond of the read is left alone, as it may have moved the row on).
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id))).toBe('replaced');
    await waitFor(async () => runs.get(id) === 2, 10_000, 'second run');
  });

  it('replaces a stray job hash a Redis flush left behind (no payload, in no list), which would swallow every re-add', async () => {
    const id = randomUUID();
    const key = `${prefix}:billing-settle:${billingSettleJobId(id)}`;
    // What a worker's script writing to a flushed job leaves: a hash with a field or two and no data.
    await conn.hset(key, 'processedOn', Date.now(), 'failedReason', 'Missing key');
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id))).toBe('replaced');
    await waitFor(async () => runs.get(id) === 1, 10_000, 'the replacing job to run');
    expect((await publisher.queue('billing-settle').getJob(billingSettleJobId(id)))?.data).toEqual(
      message(id),
    );
  });

  it('replaces a failed job that lost its payload instead of retrying it forever', async () => {
    const id = randomUUID();
    failFirst.add(id);
    await publisher.publish('billing-settle', billingSettleJobId(id), message(id));
    await waitFor(async () => (await stateOf(id)) === 'failed', 10_000, 'first failure');
    await conn.hdel(`${prefix}:billing-settle:${billingSettleJobId(id)}`, 'data');
    expect(await publisher.republish('billing-settle', billingSettleJobId(id), message(id))).toBe('replaced');
    await waitFor(async () => (await stateOf(id)) === 'completed', 10_000, 'the replacing job to complete');
  });

  it('leaves a job alone that completed after the sweep read its row (it may have moved the row on)', async () => {
    const id = randomUUID();
    const listedAt = Date.now();
    await publisher.publish('billing-settle', billingSettleJobId(id), message(id));
    await waitFor(async () => (await stateOf(id)) === 'completed', 10_000, 'completion');
    expect(
      await publisher.republish('billing-settle', billingSettleJobId(id), message(id), 0, listedAt),
    ).toBe('present');
    expect(runs.get(id)).toBe(1);
  });

  it('leaves a job to the worker that took it between the state check and the removal (no failed sweep)', async () => {
    // Nothing consumes notify-send here but this hand-driven worker, so the job stays where we put it.
    const sent = notifySendMessage({ notificationId: randomUUID(), correlationId: 'c' });
    await publisher.publish(sent.queue, sent.jobId, sent.payload);
    const seen = await publisher.queue(sent.queue).getJob(sent.jobId);
    expect(await seen?.getState()).toBe('waiting');
    const taker = new Worker(sent.queue, null, { connection: workerConn, prefix });
    try {
      // The sweep read 'waiting'; now a worker takes (and locks) the job before the removal.
      const taken = await taker.getNextJob('token-1');
      expect(taken?.id).toBe(sent.jobId);
      expect(await publisher.replace(seen!, sent.queue, sent.jobId, sent.payload)).toBe('present');
      expect(await (await publisher.queue(sent.queue).getJob(sent.jobId))?.getState()).toBe('active');
    } finally {
      await taker.close(true);
    }
  });
});
