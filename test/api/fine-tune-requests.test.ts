import { requestJobId } from '@tuneline/contracts';
import { Queue } from 'bullmq';
import { describe, expect } from 'vitest';
import { makeLicense } from './fixtures.ts';
import { type ApiContext, documents, it, request } from './support.ts';

/** POST /v1/fine-tune-requests: validation, deterministic job ids, tenants kept apart. */

let { t, redis, prefix, app, a, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, redis, prefix, app, a, call } = api);
});

describe('fine-tune requests', () => {
  it('enqueues with a deterministic job id; a retry is a duplicate with the same correlation id', async () => {
    const first = await call('POST', '/v1/fine-tune-requests', a.key, request('r-1'));
    expect(first.status).toBe(202);
    expect(first.json.jobId).toBe(requestJobId('lic-a', 'r-1'));
    expect(first.json.duplicate).toBe(false);
    const again = await call('POST', '/v1/fine-tune-requests', a.key, request('r-1', { licenseId: 'lic-a' }));
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({
      jobId: first.json.jobId,
      correlationId: first.json.correlationId,
      duplicate: true,
    });
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    const job = await queue.getJob(first.json.jobId);
    await queue.close();
    expect(job?.data.request.licenseId).toBe('lic-a');
    expect(job?.data.request.documents).toHaveLength(12);
  });

  it('keeps tenants apart whose license and request ids join to the same text (X + eu-1, X-eu + 1)', async () => {
    const x = await makeLicense(t.db, 'X', 0n);
    const xEu = await makeLicense(t.db, 'X-eu', 0n);
    const first = await call('POST', '/v1/fine-tune-requests', x.key, request('eu-1'));
    const second = await call('POST', '/v1/fine-tune-requests', xEu.key, request('1', { testPercent: 10 }));
    expect(first.status).toBe(202);
    // Not a 409 naming the other tenant's request, and not a duplicate of it: a job of its own.
    expect(second.status).toBe(202);
    expect(second.json.duplicate).toBe(false);
    expect(second.json.jobId).not.toBe(first.json.jobId);
    expect(second.json.correlationId).not.toBe(first.json.correlationId);
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    const [jobX, jobXEu] = await Promise.all([
      queue.getJob(first.json.jobId),
      queue.getJob(second.json.jobId),
    ]);
    await queue.close();
    expect(jobX?.data.request).toMatchObject({ licenseId: 'X', requestId: 'eu-1', testPercent: 20 });
    expect(jobXEu?.data.request).toMatchObject({ licenseId: 'X-eu', requestId: '1', testPercent: 10 });
  });

  it('refuses a conflicting reuse of the requestId with 409', async () => {
    await call('POST', '/v1/fine-tune-requests', a.key, request('r-2'));
    const res = await call('POST', '/v1/fine-tune-requests', a.key, request('r-2', { testPercent: 10 }));
    expect(res.status).toBe(409);
    expect(res.json.error.fields[0].field).toBe('requestId');
  });

  it('names the bad fields, and refuses another license id', async () => {
    const bad = await call('POST', '/v1/fine-tune-requests', a.key, {
      ...request('r-3', { documents: documents(3), testPercent: 80 }),
      job: { suffix: 'Way Too Long Suffix For Models' },
    });
    expect(bad.status).toBe(400);
    const fields = bad.json.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['documents', 'testPercent', 'job.suffix']));
    const foreign = await call(
      'POST',
      '/v1/fine-tune-requests',
      a.key,
      request('r-4', { licenseId: 'lic-b' }),
    );
    expect(foreign.status).toBe(400);
    expect(foreign.json.error.fields[0].field).toBe('licenseId');
    const queue = new Queue('fine-tune-requests', { connection: redis, prefix });
    expect(await queue.getJob(requestJobId('lic-b', 'r-4'))).toBeUndefined();
    await queue.close();
    const notJson = await app.inject({
      method: 'POST',
      url: '/v1/fine-tune-requests',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
      payload: '{"requestId":',
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.message).toBeTruthy();
  });
});
