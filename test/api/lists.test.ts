import type { Db } from '@tuneline/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiUnderTest, startApi } from '../support/api-app.ts';
import { createTestDatabase, type TestDatabase, testPrefix } from '../support/context.ts';
import { insertDatasetRow } from '../support/rows.ts';
import { makeLicense } from './fixtures.ts';

// Issue 15.7: the datasets and fine-tunes lists page by an opaque cursor in a stable order and filter by
// status, base model, creation time and requestId; GET /v1/fine-tune-requests/:requestId says what
// became of a request. Bad parameters answer 400 naming the parameter.

let t: TestDatabase;
let api: ApiUnderTest;
let a: { id: string; key: string };
let b: { id: string; key: string };

const get = (url: string, key: string) => api.call('GET', url, key);

const MODELS = ['gpt-4o-mini-2024-07-18', 'gpt-4.1-mini-2025-04-14'];
const DATASET_STATUSES = ['ready', 'uploaded', 'invalid'] as const;
const FT_STATUSES = ['succeeded', 'failed', 'running'] as const;
const T0 = Date.parse('2026-11-01T00:00:00Z');

interface Seeded {
  requestId: string;
  datasetId: string;
  fineTuneIds: string[];
  createdAt: Date;
  status: string;
  baseModel: string;
}

/** A request, its dataset and (for uploaded ones) fine-tunes, created at `createdAt`. */
async function seed(db: Db, licenseId: string, i: number, createdAt: Date): Promise<Seeded> {
  const requestId = `req-${licenseId}-${i}`;
  const status = DATASET_STATUSES[i % 3] as (typeof DATASET_STATUSES)[number];
  const baseModel = MODELS[i % 2] as string;
  const { datasetId, correlationId } = await insertDatasetRow(
    db,
    licenseId,
    {
      base_model: baseModel,
      status,
      test_percent: 0,
      train_examples: 12,
      epochs: 3,
      errors: JSON.stringify(
        status === 'invalid'
          ? [{ code: 'missing_field', message: 'missing', documentId: 'd1', field: 'total' }]
          : [],
      ),
      created_at: createdAt,
    },
    {
      request_id: requestId,
      status: status === 'invalid' ? 'rejected' : 'built',
      error: status === 'invalid' ? 'invalid dataset: document "d1": field "total": missing' : null,
      created_at: createdAt,
    },
  );
  const fineTuneIds: string[] = [];
  if (status === 'uploaded') {
    for (let k = 0; k < 2; k++) {
      const ftStatus = FT_STATUSES[(i + k) % 3] as (typeof FT_STATUSES)[number];
      const row = await db
        .insertInto('fine_tunes')
        .values({
          license_id: licenseId,
          dataset_id: datasetId,
          correlation_id: correlationId,
          status: ftStatus,
          base_model: baseModel,
          description: `ft ${i}/${k}`,
          notify_emails: [],
          suffix: `s${i}-${k}`,
          hyperparameters: JSON.stringify({ n_epochs: 3, batch_size: 4, learning_rate_multiplier: 0.5 }),
          credits_per_million_tokens: 3000,
          error_message: ftStatus === 'failed' ? 'training diverged' : null,
          created_at: new Date(createdAt.getTime() + k),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      fineTuneIds.push(row.id);
    }
  }
  return { requestId, datasetId, fineTuneIds, createdAt, status, baseModel };
}

const seeded: Seeded[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  api = await startApi(t.db, testPrefix());
  a = await makeLicense(t.db, 'lic-lists-a', 0n);
  b = await makeLicense(t.db, 'lic-lists-b', 0n);
  // 30 rows an hour apart, and 6 more sharing one timestamp (the order must still be total and stable).
  for (let i = 0; i < 30; i++) seeded.push(await seed(t.db, a.id, i, new Date(T0 + i * 3_600_000)));
  const same = new Date(T0 + 12 * 3_600_000 + 1_800_000);
  for (let i = 30; i < 36; i++) seeded.push(await seed(t.db, a.id, i, same));
  await seed(t.db, b.id, 0, new Date(T0)); // another license's row never shows
});

afterAll(async () => {
  await api?.close();
  await t?.drop();
});

/** Every page of a list, following nextCursor. */
async function walk(path: string, query: string, limit: number) {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = query ? '&' : '';
    const url: string = `${path}?${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await get(url, a.key);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.data.length).toBeLessThanOrEqual(limit);
    ids.push(...res.json.data.map((r: { id: string }) => r.id));
    cursor = res.json.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  return { ids, pages };
}

/** The ids the list should show, in its order: newest first, then id descending. */
function expected(rows: { id: string; createdAt: Date }[]) {
  return [...rows]
    .sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime() || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0))
    .map((r) => r.id);
}

const datasetRows = (filter: (s: Seeded) => boolean = () => true) =>
  seeded.filter(filter).map((s) => ({ id: s.datasetId, createdAt: s.createdAt }));
const fineTuneRows = (filter: (s: Seeded) => boolean = () => true) =>
  seeded
    .filter(filter)
    .flatMap((s) =>
      s.fineTuneIds.map((id, k) => ({ id, createdAt: new Date(s.createdAt.getTime() + k), s, k })),
    );

describe('dataset and fine-tune lists', () => {
  it('pages through every dataset once, in a stable order, ties on the timestamp included', async () => {
    const { ids, pages } = await walk('/v1/datasets', '', 7);
    expect(ids).toEqual(expected(datasetRows()));
    expect(pages).toBe(Math.ceil(36 / 7));
    const first = await get('/v1/datasets', a.key);
    expect(first.json.data).toHaveLength(36); // default page size 100
    expect(first.json.nextCursor).toBeNull();
    // A page of exactly the remaining rows says there is no next one.
    const exact = await get('/v1/datasets?limit=36', a.key);
    expect(exact.json.nextCursor).toBeNull();
  });

  it('pages through fine-tunes, showing base model and hyperparameters', async () => {
    const { ids } = await walk('/v1/fine-tunes', '', 5);
    expect(ids).toEqual(expected(fineTuneRows()));
    const one = (await get('/v1/fine-tunes?limit=1', a.key)).json.data[0];
    expect(one.baseModel).toMatch(/^gpt-/);
    expect(one.hyperparameters).toEqual({ n_epochs: 3, batch_size: 4, learning_rate_multiplier: 0.5 });
  });

  it('filters by status (one or several), base model, creation time and requestId, also across pages', async () => {
    const ready = await walk('/v1/datasets', 'status=ready', 4);
    expect(ready.ids).toEqual(expected(datasetRows((s) => s.status === 'ready')));
    const several = await walk('/v1/datasets', 'status=ready,invalid', 4);
    expect(several.ids).toEqual(expected(datasetRows((s) => s.status !== 'uploaded')));
    const model = await walk('/v1/datasets', `baseModel=${MODELS[1]}`, 4);
    expect(model.ids).toEqual(expected(datasetRows((s) => s.baseModel === MODELS[1])));
    const from = new Date(T0 + 5 * 3_600_000);
    const to = new Date(T0 + 20 * 3_600_000);
    const range = await walk(
      '/v1/datasets',
      `createdFrom=${from.toISOString()}&createdTo=${encodeURIComponent(to.toISOString())}`,
      4,
    );
    expect(range.ids).toEqual(expected(datasetRows((s) => s.createdAt >= from && s.createdAt < to)));
    const day = await walk('/v1/datasets', 'createdFrom=2026-11-02&createdTo=2026-11-02T03:00:00Z', 10);
    expect(day.ids).toHaveLength(3);
    const combined = await walk(
      '/v1/datasets',
      `status=uploaded&baseModel=${MODELS[0]}&createdFrom=2026-11-01T06:00:00Z`,
      2,
    );
    expect(combined.ids).toEqual(
      expected(
        datasetRows(
          (s) =>
            s.status === 'uploaded' &&
            s.baseModel === MODELS[0] &&
            s.createdAt.getTime() >= T0 + 6 * 3_600_000,
        ),
      ),
    );
    const target = seeded.find((s) => s.fineTuneIds.length) as Seeded;
    const byRequest = await get(`/v1/datasets?requestId=${target.requestId}`, a.key);
    expect(byRequest.json.data.map((d: { id: string }) => d.id)).toEqual([target.datasetId]);
    const ftByRequest = await get(`/v1/fine-tunes?requestId=${target.requestId}`, a.key);
    expect(ftByRequest.json.data.map((d: { id: string }) => d.id).sort()).toEqual(
      [...target.fineTuneIds].sort(),
    );
    // Another license's requestId finds nothing here.
    expect((await get('/v1/datasets?requestId=req-lic-lists-b-0', a.key)).json.data).toEqual([]);

    const failed = await walk('/v1/fine-tunes', 'status=failed,running', 3);
    expect(failed.ids).toEqual(
      expected(
        fineTuneRows().filter((r) =>
          ['failed', 'running'].includes(FT_STATUSES[(seeded.indexOf(r.s) + r.k) % 3] as string),
        ),
      ),
    );
    const ftModel = await walk('/v1/fine-tunes', `baseModel=${MODELS[0]}&status=failed`, 3);
    expect(ftModel.ids).toEqual(
      expected(
        fineTuneRows().filter(
          (r) => r.s.baseModel === MODELS[0] && FT_STATUSES[(seeded.indexOf(r.s) + r.k) % 3] === 'failed',
        ),
      ),
    );
    expect(ftModel.ids.length).toBeGreaterThan(0);
  });

  it('answers 400 naming the parameter for bad cursors and filters', async () => {
    const cases: [string, string][] = [
      ['/v1/datasets?cursor=not-a-cursor!', 'cursor'],
      [
        `/v1/datasets?cursor=${Buffer.from('{"v":1,"at":"yesterday","id":"x"}').toString('base64url')}`,
        'cursor',
      ],
      [`/v1/fine-tunes?cursor=${Buffer.from('garbage').toString('base64url')}`, 'cursor'],
      ['/v1/datasets?limit=0', 'limit'],
      ['/v1/datasets?limit=501', 'limit'],
      ['/v1/fine-tunes?limit=ten', 'limit'],
      ['/v1/datasets?status=done', 'status'],
      ['/v1/fine-tunes?status=succeeded,nope', 'status'],
      ['/v1/fine-tunes?status=ready', 'status'], // a dataset status, not a fine-tune's
      ['/v1/datasets?createdFrom=yesterday', 'createdFrom'],
      ['/v1/datasets?createdTo=2026-13-45', 'createdTo'],
      ['/v1/fine-tunes?createdFrom=2026-11-02&createdTo=2026-11-01', 'createdTo'],
      ['/v1/datasets?baseModel=', 'baseModel'],
      ['/v1/datasets?staus=ready', ''],
    ];
    for (const [url, field] of cases) {
      const res = await get(url, a.key);
      expect(res.status, url).toBe(400);
      if (field) {
        expect(
          res.json.error.fields.map((f: { field: string }) => f.field),
          url,
        ).toContain(field);
        expect(res.json.error.message, url).toContain(field);
      } else {
        expect(res.json.error.message, url).toContain('staus');
      }
    }
  });

  it('a cursor from one list continues only where it points: another license sees its own rows', async () => {
    const page = await get('/v1/datasets?limit=2', a.key);
    const other = await get(`/v1/datasets?cursor=${page.json.nextCursor}`, b.key);
    expect(other.status).toBe(200);
    expect(other.json.data.every((d: { id: string }) => !seeded.some((s) => s.datasetId === d.id))).toBe(
      true,
    );
  });
});

describe('GET /v1/fine-tune-requests/:requestId', () => {
  it('gives the request, its dataset, its fine-tunes, and one status and error', async () => {
    const target = seeded.find((s) => s.fineTuneIds.length) as Seeded;
    const res = await get(`/v1/fine-tune-requests/${target.requestId}`, a.key);
    expect(res.status).toBe(200);
    expect(res.json.request).toMatchObject({ requestId: target.requestId, status: 'built', error: null });
    expect(res.json.dataset.id).toBe(target.datasetId);
    expect(res.json.fineTunes.map((f: { id: string }) => f.id)).toEqual([...target.fineTuneIds].reverse());
    expect(res.json.stage).toBe('fine-tune');
    expect(res.json.status).toBe(res.json.fineTunes[0].status);
    expect(res.json.error).toBe(res.json.fineTunes[0].errorMessage);
  });

  it('says why a rejected request stopped, from its dataset errors', async () => {
    const rejected = seeded.find((s) => s.status === 'invalid') as Seeded;
    const res = await get(`/v1/fine-tune-requests/${rejected.requestId}`, a.key);
    expect(res.json).toMatchObject({ stage: 'dataset', status: 'invalid', fineTunes: [] });
    expect(res.json.request.status).toBe('rejected');
    expect(res.json.error).toBe('document "d1", field "total": missing');
  });

  it('answers 404 for an unknown or another license’s request, 400 for a malformed id', async () => {
    expect((await get('/v1/fine-tune-requests/req-unknown', a.key)).status).toBe(404);
    expect((await get('/v1/fine-tune-requests/req-lic-lists-b-0', a.key)).status).toBe(404);
    expect((await get('/v1/fine-tune-requests/req-lic-lists-b-0', b.key)).status).toBe(200);
    const bad = await get('/v1/fine-tune-requests/bad%20id', a.key);
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields[0].field).toBe('requestId');
  });
});
