import { randomUUID } from 'node:crypto';
import { billingSettleJobId, billingSettleMessage } from '@tuneline/contracts';
import {
  inTransaction,
  markOutboxPublished,
  OutboxCapture,
  relayOutbox,
  uncapturedOutboxWrites,
  writeOutbox,
} from '@tuneline/db';
import { sql } from 'kysely';
import { describe, expect } from 'vitest';
import type { TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

describe('outbox capture and relay', () => {
  let tdb: TestDatabase;

  test.beforeAll(async ({ database }) => {
    tdb = database;
  });

  const settle = (id: string) => billingSettleMessage({ fineTuneId: id, correlationId: 'c' });
  const unpublished = async (ids: string[]) =>
    (
      await tdb.db
        .selectFrom('outbox')
        .select('job_id')
        .where('published_at', 'is', null)
        .where(
          'job_id',
          'in',
          ids.map((id) => billingSettleJobId(id)),
        )
        .execute()
    ).map((r) => r.job_id);

  it('hands over only what committed: a rolled-back transaction captures nothing, a nested one joins its parent', async () => {
    const [kept, nested, rolledBack] = [randomUUID(), randomUUID(), randomUUID()];
    const capture = new OutboxCapture();
    await capture.run(async () => {
      await inTransaction(tdb.db, async (tx) => {
        await writeOutbox(tx, settle(kept));
        // A repository that opens its own transaction joins the caller's instead.
        await inTransaction(tx, (inner) => writeOutbox(inner, { ...settle(nested), delayMs: 60_000 }));
        expect(capture.committed).toEqual([]); // not before COMMIT
      });
      await expect(
        inTransaction(tdb.db, async (tx) => {
          await writeOutbox(tx, settle(rolledBack));
          throw new Error('the state change failed');
        }),
      ).rejects.toThrow('the state change failed');
    });

    expect(capture.committed.map((r) => r.job_id)).toEqual([
      billingSettleJobId(kept),
      billingSettleJobId(nested),
    ]);
    const [first, second] = capture.committed;
    expect(first?.payload).toEqual(settle(kept).payload);
    // The delay is carried as the time the message becomes available.
    expect(second!.available_at.getTime() - first!.available_at.getTime()).toBeGreaterThanOrEqual(59_000);
    // What is stored matches what was captured, row for row.
    const stored = await tdb.db
      .selectFrom('outbox')
      .select(['id', 'job_id'])
      .where(
        'id',
        'in',
        capture.committed.map((r) => r.id),
      )
      .orderBy('id')
      .execute();
    expect(stored.map((r) => r.job_id)).toEqual(capture.committed.map((r) => r.job_id));
    expect(await unpublished([rolledBack])).toEqual([]);
  });

  it('counts writes no capture sees, so the worker knows to run the relay for them', async () => {
    const before = uncapturedOutboxWrites();
    await tdb.db.transaction().execute((tx) => writeOutbox(tx, settle(randomUUID())));
    const capture = new OutboxCapture();
    await capture.run(() => inTransaction(tdb.db, (tx) => writeOutbox(tx, settle(randomUUID()))));
    expect(uncapturedOutboxWrites()).toBe(before + 1);
    expect(capture.committed).toHaveLength(1);
  });

  it('the timer relay leaves fresh rows to the job that wrote them and takes them once they are old', async () => {
    const id = randomUUID();
    await writeOutbox(tdb.db, settle(id));
    const published: string[] = [];
    const publish = async (rows: { job_id: string }[]) => {
      published.push(...rows.map((r) => r.job_id));
    };
    await relayOutbox(tdb.db, publish, { minAgeMs: 60_000 });
    expect(published).not.toContain(billingSettleJobId(id));
    // As if the job that wrote it had crashed a minute ago.
    await tdb.db
      .updateTable('outbox')
      .set({ created_at: sql`now() - interval '61 seconds'` })
      .where('job_id', '=', billingSettleJobId(id))
      .execute();
    await relayOutbox(tdb.db, publish, { minAgeMs: 60_000 });
    expect(published).toContain(billingSettleJobId(id));
    expect(await unpublished([id])).toEqual([]);
  });

  it('marking is idempotent and leaves the first publication time alone', async () => {
    const id = randomUUID();
    const capture = new OutboxCapture();
    await capture.run(() => inTransaction(tdb.db, (tx) => writeOutbox(tx, settle(id))));
    const ids = capture.committed.map((r) => r.id);
    const publishedAt = async () =>
      (await tdb.db.selectFrom('outbox').select('published_at').where('id', '=', ids[0]!).executeTakeFirst())
        ?.published_at;
    await markOutboxPublished(tdb.db, ids);
    const first = await publishedAt();
    await markOutboxPublished(tdb.db, ids);
    expect(first).toBeInstanceOf(Date);
    expect(await publishedAt()).toEqual(first);
  });
});
