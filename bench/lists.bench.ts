// List endpoints (issue 15.7): GET /v1/datasets and GET /v1/fine-tunes over real HTTP, with 100,000
// datasets and 100,000 fine-tunes in one license (and 20,000 of each in another), a page of 100:
// the first page, a deep page (after row 90,000, through its cursor), filtered pages (status and base
// model; a date range; a requestId). Target: p95 < 50 ms each. Baseline, same run: the bare indexed
// SELECT of the same page (license, page start, ORDER BY created_at DESC, id DESC LIMIT 101) sent with
// pg on one connection, so the ratio is what the API adds (auth, validation, the dead-letter look-up,
// mapping, JSON, HTTP) over the query. CPU per call (this process: the API and its HTTP client) is
// printed too, and the HTTP floor (GET /livez with the same client): on a shared machine the wall
// times swing with other work, the CPU costs much less.
import { loadavg } from 'node:os';
import { createApiKey, encodeCursor } from '@tuneline/api';
import type { Db } from '@tuneline/db';
import { createRedis } from '@tuneline/runtime';
import { sql } from 'kysely';
import pg from 'pg';
import { listeningApi, requireServers, scratchDatabase } from './support.ts';

const ROWS = Number(process.env.LISTS_BENCH_ROWS ?? 100_000);
const OTHER_ROWS = 20_000;
const SAMPLES = Number(process.env.LISTS_BENCH_SAMPLES ?? 200);
const WARMUP = 20;
const TARGET_P95_MS = 50;
const LICENSE = 'lic-bench';
/** The deep page starts after this many rows (90,000 of 100,000). */
const DEEP = Math.floor(ROWS * 0.9);
/** The request the requestId filter looks for. */
const REQUEST = `req-${Math.floor(ROWS * 0.77)}`;

const { baseUrl, redisUrl } = requireServers('lists.bench');

const MODELS = [
  'gpt-4o-mini-2024-07-18',
  'gpt-4.1-mini-2025-04-14',
  'gpt-4.1-2025-04-14',
  'gpt-4o-2024-08-06',
];
const DATASET_STATUSES = ['uploaded', 'uploaded', 'uploaded', 'ready', 'invalid', 'upload_failed'];
const FT_STATUSES = [
  'succeeded',
  'succeeded',
  'succeeded',
  'succeeded',
  'failed',
  'cancelled',
  'running',
  'queued',
];

/** n requests, datasets and fine-tunes of a license, one each per minute going back from now. */
async function seed(db: Db, licenseId: string, n: number): Promise<void> {
  const models = sql.val(MODELS);
  const dsStatuses = sql.val(DATASET_STATUSES);
  const ftStatuses = sql.val(FT_STATUSES);
  await sql`INSERT INTO licenses (id, name) VALUES (${licenseId}, ${licenseId})`.execute(db);
  await sql`
    INSERT INTO fine_tune_requests (license_id, request_id, content_hash, correlation_id, payload, status, created_at)
    SELECT ${licenseId}, 'req-' || i, md5(i::text) || md5(i::text), 'corr-' || i, '{}'::jsonb, 'built',
      now() - make_interval(mins => i)
    FROM generate_series(1, ${n}) AS i`.execute(db);
  await sql`
    INSERT INTO datasets (request_row_id, license_id, correlation_id, base_model, status, dump, test_percent,
      content_hash, short_hash, train_examples, test_examples, train_tokens, test_tokens, epochs,
      estimated_billed_tokens, estimated_credits, warnings, errors, auto_train, job_options, created_at)
    SELECT r.id, r.license_id, r.correlation_id,
      (${models}::text[])[1 + ((i / 5) % 4)], (${dsStatuses}::text[])[1 + (i % 6)], 'mapped', 10,
      md5(i::text) || md5(i::text), left(md5(i::text), 8), 90, 10, 45000, 5000, 3, 135000, 405,
      '[{"code":"few_examples","message":"fewer than 100 examples"}]'::jsonb, '[]'::jsonb, true,
      '{"description":"bench","hyperparameters":"auto"}'::jsonb, r.created_at
    FROM fine_tune_requests r, LATERAL (SELECT substring(r.request_id from 5)::int AS i) k
    WHERE r.license_id = ${licenseId}`.execute(db);
  await sql`
    INSERT INTO fine_tunes (license_id, dataset_id, correlation_id, status, base_model, description, notify_emails,
      suffix, hyperparameters, credits_per_million_tokens, provider_job_id, trained_tokens, credits_reserved,
      credits_charged, created_at, finished_at)
    SELECT d.license_id, d.id, d.correlation_id, (${ftStatuses}::text[])[1 + (k.i % 8)], d.base_model,
      'Invoices ' || k.i, ARRAY['ops@example.com'], left(d.short_hash, 8),
      '{"n_epochs":3,"batch_size":4,"learning_rate_multiplier":1.8}'::jsonb, 3000, 'ftjob-' || d.id, 135000, 450,
      405, d.created_at, d.created_at + interval '20 minutes'
    FROM datasets d JOIN fine_tune_requests r ON r.id = d.request_row_id,
      LATERAL (SELECT substring(r.request_id from 5)::int AS i) k
    WHERE d.license_id = ${licenseId}`.execute(db);
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

async function timeIt(run: () => Promise<void>): Promise<{ p50: number; p95: number; cpuMs: number }> {
  for (let i = 0; i < WARMUP; i++) await run();
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    cpuMs: (cpu.user + cpu.system) / 1000 / SAMPLES,
  };
}

const scratch = await scratchDatabase(baseUrl, 'lists', 20);
const redis = createRedis(redisUrl, 'producer');
let missed = 0;
try {
  const seedStart = performance.now();
  await seed(scratch.db, LICENSE, ROWS);
  await seed(scratch.db, 'lic-other', OTHER_ROWS);
  await sql`ANALYZE`.execute(scratch.db);
  console.log(
    `seeded ${ROWS.toLocaleString('en-US')} datasets and fine-tunes in ${LICENSE} (+${OTHER_ROWS.toLocaleString('en-US')} in another license) in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
  );

  const { key } = await createApiKey(scratch.db, LICENSE);
  const { app, url: base } = await listeningApi(scratch.db, redis, 'lists-bench');
  const client = new pg.Client({ connectionString: scratch.url });
  client.on('error', () => {}); // the scratch database is dropped with force at the end
  await client.connect();

  /** The key of the row at `offset` of a list (0-based): where the deep page starts. */
  const keyAt = async (table: 'datasets' | 'fine_tunes', offset: number) => {
    const { rows } = await client.query<{ at: string; id: string }>(
      `SELECT created_at::text AS at, id FROM ${table} WHERE license_id = $1
       ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1`,
      [LICENSE, offset],
    );
    return rows[0] as { at: string; id: string };
  };

  // The HTTP floor in this process: the same fetch, for a route that does nothing (/livez).
  const floor = await timeIt(async () => {
    await (await fetch(`${base}/livez`)).json();
  });
  console.log(
    `HTTP floor (GET /livez, same client): p50 ${floor.p50.toFixed(1)} / p95 ${floor.p95.toFixed(1)} ms, CPU/call ${floor.cpuMs.toFixed(1)} ms`,
  );

  const middle = new Date(Date.now() - Math.floor(ROWS / 2) * 60_000);
  const weekBefore = new Date(middle.getTime() - 7 * 24 * 3_600_000);
  for (const [path, table, status] of [
    ['/v1/datasets', 'datasets', 'ready'],
    ['/v1/fine-tunes', 'fine_tunes', 'failed'],
  ] as const) {
    const deep = await keyAt(table, DEEP - 1);
    const model = MODELS[2] as string;
    const scenarios: { name: string; query: string; baseline: { where: string; params: unknown[] } }[] = [
      { name: 'first page', query: '', baseline: { where: '', params: [] } },
      {
        name: `deep page (after row ${DEEP.toLocaleString('en-US')})`,
        query: `&cursor=${encodeCursor(deep)}`,
        baseline: { where: 'AND (created_at, id) < ($2::timestamptz, $3::uuid)', params: [deep.at, deep.id] },
      },
      {
        name: `status=${status}&baseModel (about 1 in ${status === 'ready' ? 24 : 32} rows)`,
        query: `&status=${status}&baseModel=${model}`,
        baseline: { where: 'AND status = $2 AND base_model = $3', params: [status, model] },
      },
      {
        name: 'createdFrom..createdTo (a week, mid-list)',
        query: `&createdFrom=${weekBefore.toISOString()}&createdTo=${middle.toISOString()}`,
        baseline: { where: 'AND created_at >= $2 AND created_at < $3', params: [weekBefore, middle] },
      },
      {
        name: 'requestId',
        query: `&requestId=${REQUEST}`,
        baseline: {
          where:
            table === 'datasets'
              ? 'AND request_row_id IN (SELECT id FROM fine_tune_requests r WHERE r.license_id = $1 AND r.request_id = $2)'
              : 'AND dataset_id IN (SELECT d.id FROM datasets d JOIN fine_tune_requests r ON r.id = d.request_row_id WHERE r.license_id = $1 AND r.request_id = $2)',
          params: [REQUEST],
        },
      },
    ];
    console.log(`\n${path}?limit=100 (p50 / p95 ms; baseline: the bare indexed SELECT of the same page)`);
    for (const s of scenarios) {
      let shown = 0;
      const api = await timeIt(async () => {
        const res = await fetch(`${base}${path}?limit=100${s.query}`, {
          headers: { authorization: `Bearer ${key}` },
        });
        if (res.status !== 200) throw new Error(`${path}${s.query}: HTTP ${res.status} ${await res.text()}`);
        shown = ((await res.json()) as { data: unknown[] }).data.length;
      });
      const text = `SELECT * FROM ${table} WHERE license_id = $1 ${s.baseline.where} ORDER BY created_at DESC, id DESC LIMIT 101`;
      const bare = await timeIt(async () => {
        await client.query(text, [LICENSE, ...s.baseline.params]);
      });
      const ok = api.p95 < TARGET_P95_MS;
      if (!ok) missed++;
      console.log(
        `  ${s.name.padEnd(44)} ${String(shown).padStart(3)} rows  API ${api.p50.toFixed(1).padStart(5)} / ${api.p95.toFixed(1).padStart(5)}  bare SELECT ${bare.p50.toFixed(1).padStart(5)} / ${bare.p95.toFixed(1).padStart(5)}  ratio p95 ${(api.p95 / bare.p95).toFixed(1)}x  CPU/call ${api.cpuMs.toFixed(1)} vs ${bare.cpuMs.toFixed(1)} ms  ${ok ? 'ok' : `TARGET MISSED (p95 >= ${TARGET_P95_MS} ms)`}`,
      );
    }
  }
  console.log(
    `\nload average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ${SAMPLES} samples after ${WARMUP} warm-up calls each`,
  );
  console.log(
    missed
      ? `TARGET MISSED in ${missed} scenarios`
      : `target p95 < ${TARGET_P95_MS} ms: met in every scenario`,
  );
  await client.end();
  await app.close();
} finally {
  redis.disconnect();
  await scratch.drop();
}
process.exit(0);
