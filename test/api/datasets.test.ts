import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { describe, expect } from 'vitest';
import { makeDataset } from './fixtures.ts';
import { type ApiContext, it } from './support.ts';

/** The dataset routes: the grid, upload, creating a fine-tune. */

let { t, redis, prefix, a, b, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, redis, prefix, a, b, call } = api);
});

describe('datasets', () => {
  it('lists only the caller’s datasets with the grid figures; another license’s id is 404', async () => {
    const mine = await makeDataset(t.db, a.id, 'uploaded');
    const theirs = await makeDataset(t.db, b.id);
    const list = await call('GET', '/v1/datasets', a.key);
    expect(list.status).toBe(200);
    const ids = list.json.data.map((d: { id: string }) => d.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    const one = await call('GET', `/v1/datasets/${mine}`, a.key);
    expect(one.json).toMatchObject({
      id: mine,
      trainExamples: 48,
      testExamples: 12,
      trainTokens: '24000',
      estimatedBilledTokens: '72000',
      estimatedCredits: '216',
      trainFileId: 'file-train',
      status: 'uploaded',
    });
    expect(one.json.warnings).toHaveLength(1);
    expect((await call('GET', `/v1/datasets/${theirs}`, a.key)).status).toBe(404);
    expect((await call('GET', `/v1/datasets/${randomUUID()}`, a.key)).status).toBe(404);
    const bad = await call('GET', '/v1/datasets/not-a-uuid', a.key);
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields[0].field).toBe('id');
  });

  it('queues the upload of a ready dataset once; another license’s dataset is untouched', async () => {
    const ready = await makeDataset(t.db, a.id, 'ready');
    const res = await call('POST', `/v1/datasets/${ready}/upload`, a.key);
    expect(res.status).toBe(202);
    expect(res.json.status).toBe('uploading');
    expect((await call('POST', `/v1/datasets/${ready}/upload`, a.key)).status).toBe(202);
    const outbox = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `files-upload-${ready}`)
      .execute();
    expect(outbox).toHaveLength(1);
    const queue = new Queue('files-upload', { connection: redis, prefix });
    expect((await queue.getJob(`files-upload-${ready}`))?.data.datasetId).toBe(ready);
    await queue.close();

    const theirs = await makeDataset(t.db, b.id, 'ready');
    expect((await call('POST', `/v1/datasets/${theirs}/upload`, a.key)).status).toBe(404);
    const row = await t.db
      .selectFrom('datasets')
      .select('status')
      .where('id', '=', theirs)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('ready');
    expect(
      await t.db.selectFrom('outbox').selectAll().where('job_id', '=', `files-upload-${theirs}`).execute(),
    ).toHaveLength(0);

    const invalid = await makeDataset(t.db, a.id, 'invalid');
    expect((await call('POST', `/v1/datasets/${invalid}/upload`, a.key)).status).toBe(409);
  });

  it('creates a fine-tune from an uploaded dataset, idempotently per key, with a finetune-create message', async () => {
    const uploaded = await makeDataset(t.db, a.id, 'uploaded');
    const body = {
      description: 'Invoices v2',
      notifyEmails: 'a@example.com; b@example.com',
      idempotencyKey: 'k1',
    };
    const res = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, body);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      datasetId: uploaded,
      status: 'pending',
      suffix: 'a1b2c3d4',
      notifyEmails: ['a@example.com', 'b@example.com'],
      creditsPerMillionTokens: '3000',
    });
    const again = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, body);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(res.json.id);
    const rows = await t.db
      .selectFrom('fine_tunes')
      .select('id')
      .where('dataset_id', '=', uploaded)
      .execute();
    expect(rows).toHaveLength(1);
    const outbox = await t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', `finetune-create-${res.json.id}`)
      .execute();
    expect(outbox).toHaveLength(1);

    const bad = await call('POST', `/v1/datasets/${uploaded}/fine-tunes`, a.key, {
      description: 'x'.repeat(121),
      suffix: 'UPPER',
      notifyEmails: 'not-an-email',
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields.map((f: { field: string }) => f.field).sort()).toEqual([
      'description',
      'notifyEmails',
      'suffix',
    ]);

    const ready = await makeDataset(t.db, a.id, 'ready');
    expect((await call('POST', `/v1/datasets/${ready}/fine-tunes`, a.key, {})).status).toBe(409);

    const theirs = await makeDataset(t.db, b.id, 'uploaded');
    expect((await call('POST', `/v1/datasets/${theirs}/fine-tunes`, a.key, {})).status).toBe(404);
    expect(
      await t.db.selectFrom('fine_tunes').select('id').where('dataset_id', '=', theirs).execute(),
    ).toHaveLength(0);
  });
});
