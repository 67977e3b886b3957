import { billingStage, settleFineTune } from '@tuneline/billing';
import { billingSettleJobId, billingSettleMessage, notifySendJobId } from '@tuneline/contracts';
import { auditLedger, creditsForTokens, getBalance } from '@tuneline/ledger';
import { createLogger, type RunningStage } from '@tuneline/runtime';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import type { StageRunner } from '../support/stage-runner.ts';
import { createFineTune } from './fixtures.ts';

let t: TestDatabase;
let runner: StageRunner;
const log = createLogger('billing', 'silent');
let queue: Queue;
let redis: Redis;

// What both workers report to the credits-charged metric, per fine-tune.
const settledReports: { status: string; charged: bigint }[] = [];

async function startWorker(): Promise<RunningStage> {
  return runner.start(
    billingStage,
    { db: t.db, log, onSettled: (status, charged) => settledReports.push({ status, charged }) },
    { concurrency: 4, timers: false },
  );
}

test.beforeAll(async ({ database, redis: client, prefix, stages }) => {
  t = database;
  redis = client;
  runner = stages;
  queue = new Queue('billing-settle', { connection: redis, prefix });
  await startWorker();
  await startWorker();
});

afterAll(async () => {
  await runner?.closeAll(5_000);
  await queue?.close();
});

const message = (fineTuneId: string, correlationId: string) =>
  billingSettleMessage({ fineTuneId, correlationId }).payload;

/** Settles the fine-tune directly, in a transaction of its own, as the billing worker does. */
const settle = (fineTuneId: string) => t.db.transaction().execute((tx) => settleFineTune(tx, fineTuneId));

/** What settling a fine-tune that did not succeed returns: its two notifications queued, no evaluation. */
const settledUnsucceeded = (status: string, charged: bigint, released: bigint) => ({
  settled: true,
  status,
  charged,
  released,
  heldForEvaluation: 0n,
  notifications: 2,
  evaluation: false,
});

async function waitCompleted(ids: string[]) {
  await waitFor(
    async () => {
      const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
      if (states.some((s) => s === 'failed')) throw new Error(`a job failed: ${states.join(', ')}`);
      return states.every((s) => s === 'completed');
    },
    20_000,
    `jobs ${ids.join(', ')}`,
  );
}

async function ledgerRows(fineTuneId: string) {
  return t.db
    .selectFrom('ledger_transfers')
    .select(['id', 'kind', 'amount'])
    .where('fine_tune_id', '=', fineTuneId)
    .orderBy('seq')
    .execute();
}

async function notificationsOf(fineTuneId: string) {
  const rows = await t.db
    .selectFrom('notifications')
    .selectAll()
    .where('fine_tune_id', '=', fineTuneId)
    .execute();
  const outbox = await t.db
    .selectFrom('outbox')
    .select('job_id')
    .where('queue', '=', 'notify-send')
    .where('job_id', 'in', rows.length ? rows.map((r) => notifySendJobId(r.id)) : ['none'])
    .execute();
  return { rows, outbox };
}

describe('billing stage', () => {
  it('settle delivered 3 times, to 2 workers at once: one charge, one set of notifications', async () => {
    const ft = await createFineTune(t.db, { grant: 5_000n, reserve: 1_000n, trainedTokens: 123_456n });
    const ids = [
      billingSettleJobId(ft.id),
      `${billingSettleJobId(ft.id)}-again`,
      `${billingSettleJobId(ft.id)}-more`,
    ];
    await Promise.all(
      ids.map((id) => queue.add('billing-settle', message(ft.id, ft.correlation_id), { jobId: id })),
    );
    await waitCompleted(ids);

    const expected = creditsForTokens(123_456n, 3_000n); // ceil(370.368) = 371
    expect(expected).toBe(371n);
    // The credits-charged metric hears of the charge once, from whichever worker settled it.
    expect(settledReports).toEqual([{ status: 'succeeded', charged: 371n }]);
    expect(await ledgerRows(ft.id)).toEqual([
      { id: `reserve-${ft.id}`, kind: 'reserve', amount: '1000' },
      { id: `post-${ft.id}`, kind: 'post', amount: '371' },
    ]);
    const row = await t.db
      .selectFrom('fine_tunes')
      .selectAll()
      .where('id', '=', ft.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ credits_charged: '371', available: true });
    expect(row.settled_at).toBeInstanceOf(Date);
    expect(await getBalance(t.db, ft.license_id)).toEqual({
      posted: 5_000n - 371n,
      pending: 0n,
      available: 5_000n - 371n,
      overageBlocked: false,
    });
    const { rows, outbox } = await notificationsOf(ft.id);
    expect(rows.map((r) => [r.recipient, r.kind, r.status]).sort()).toEqual([
      ['Ana.Lopez@example.org', 'succeeded', 'pending'],
      ['ops@example.com', 'succeeded', 'pending'],
    ]);
    expect(outbox).toHaveLength(2);
    expect(rows.every((r) => /^<ft-[0-9a-f-]{36}-succeeded-[0-9a-f]{16}@tuneline>$/.test(r.message_id))).toBe(
      true,
    );
    expect((await auditLedger(t.db)).violations).toEqual([]);
  });

  it('killed between commit and acknowledgement: the redelivered message charges nothing more', async () => {
    const ft = await createFineTune(t.db, { grant: 1_000n, reserve: 500n, trainedTokens: 100_000n });
    // The first delivery commits (the handler runs to the end), then the process "dies" before the ack:
    // the message comes back as a new job.
    await billingStage.handle(
      message(ft.id, ft.correlation_id),
      { queue: 'billing-settle', jobId: 'lost', attempt: 1, correlationId: ft.correlation_id, log },
      { db: t.db, log },
    );
    const redelivered = `${billingSettleJobId(ft.id)}-redelivered`;
    await queue.add('billing-settle', message(ft.id, ft.correlation_id), { jobId: redelivered });
    await waitCompleted([redelivered]);
    expect((await ledgerRows(ft.id)).map((r) => r.kind)).toEqual(['reserve', 'post']);
    expect(await getBalance(t.db, ft.license_id)).toMatchObject({ posted: 700n, pending: 0n });
    expect((await notificationsOf(ft.id)).rows).toHaveLength(2);
    expect(await settle(ft.id)).toEqual({
      settled: false,
      reason: 'already_settled',
    });
    expect((await auditLedger(t.db)).violations).toEqual([]);
  });

  it('failed with no trained tokens voids the reservation; cancelled after some training charges them', async () => {
    const failed = await createFineTune(t.db, {
      status: 'failed',
      grant: 1_000n,
      reserve: 800n,
      trainedTokens: null,
    });
    const cancelled = await createFineTune(t.db, {
      status: 'cancelled',
      grant: 1_000n,
      reserve: 800n,
      trainedTokens: 50_000n,
    });
    const a = await settle(failed.id);
    const b = await settle(cancelled.id);
    expect(a).toEqual(settledUnsucceeded('failed', 0n, 800n));
    expect(b).toEqual(settledUnsucceeded('cancelled', 150n, 650n));
    expect((await ledgerRows(failed.id)).map((r) => r.kind)).toEqual(['reserve', 'void']);
    expect(await getBalance(t.db, failed.license_id)).toMatchObject({ available: 1_000n });
    expect(await getBalance(t.db, cancelled.license_id)).toMatchObject({ available: 850n });
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select(['id', 'available', 'credits_charged'])
      .where('id', 'in', [failed.id, cancelled.id])
      .execute();
    expect(rows.every((r) => r.available === false)).toBe(true);
    expect((await auditLedger(t.db)).violations).toEqual([]);
  });

  it('insufficient_credits: notifications, no charge; a second settle adds nothing', async () => {
    const ft = await createFineTune(t.db, { status: 'insufficient_credits', trainedTokens: null });
    const first = await settle(ft.id);
    expect(first).toEqual(settledUnsucceeded('insufficient_credits', 0n, 0n));
    await settle(ft.id);
    expect(await ledgerRows(ft.id)).toEqual([]);
    const { rows, outbox } = await notificationsOf(ft.id);
    expect(rows.map((r) => r.kind)).toEqual(['insufficient_credits', 'insufficient_credits']);
    expect(outbox).toHaveLength(2);
    expect((await auditLedger(t.db)).violations).toEqual([]);
  });

  it('overage beyond the balance is charged in full and blocks the license', async () => {
    const ft = await createFineTune(t.db, {
      grant: 100n,
      reserve: 100n,
      trainedTokens: 50_000n,
      creditsPerMillionTokens: 4_000_000n,
    });
    const outcome = await settle(ft.id);
    expect(outcome).toMatchObject({ charged: 200_000n, released: 0n });
    expect(await getBalance(t.db, ft.license_id)).toMatchObject({
      available: 100n - 200_000n,
      overageBlocked: true,
    });
    expect((await auditLedger(t.db)).violations).toEqual([]);
  });

  it('recover lists finished, unsettled fine-tunes only', async () => {
    const waiting = await createFineTune(t.db, { grant: 1_000n, reserve: 10n, trainedTokens: 1n });
    const running = await createFineTune(t.db, { status: 'running', trainedTokens: null });
    const messages = await billingStage.recover?.({ db: t.db, log });
    const ids = (messages ?? []).map((m) => m.jobId);
    expect(ids).toContain(billingSettleJobId(waiting.id));
    expect(ids).not.toContain(billingSettleJobId(running.id));
    await settle(waiting.id);
    const after = ((await billingStage.recover?.({ db: t.db, log })) ?? []).map((m) => m.jobId);
    expect(after).not.toContain(billingSettleJobId(waiting.id));
  });
});
