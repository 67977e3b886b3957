// Ledger throughput: reserve+post pairs per second across 100 licenses and on one hot license, 16 at a
// time over one pool; then the auditor over everything written (must find 0 violations). Each reserve
// and each post is one statement sent on the pool: one round trip, its own transaction and commit
// (inside the trainer's or billing's transaction the same statement joins theirs). Baselines measured in
// the same run, the same way (one statement per commit, same pool and concurrency): a one-row INSERT
// (the commit cost floor) and a same-row UPDATE (the ceiling for one hot row); the one-row insert in
// BEGIN/COMMIT is shown too, for comparison with figures taken before the operations were one statement.
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import type { Db } from '@tuneline/db';
import { auditLedger, grantCredits, postReservation, reserveCredits } from '@tuneline/ledger';
import { sql } from 'kysely';
import { postgresCpuMs, requireDatabaseUrl, scratchDatabase } from './support.ts';

const CONCURRENCY = Number(process.env.LEDGER_BENCH_CONCURRENCY ?? 16);
const LICENSES = 100;
const SPREAD_PAIRS = 4_000;
const HOT_PAIRS = 1_500;
const TARGET_SPREAD = 1_000;
const TARGET_HOT = 200;

const baseUrl = requireDatabaseUrl('ledger.bench');

const freshDatabase = () => scratchDatabase(baseUrl, 'ledger', CONCURRENCY + 2);

interface Rate {
  perSecond: number;
  /** CPU ms per task: this process, and the database's backends (null: not on this machine). */
  clientMs: number;
  serverMs: number | null;
}

/** Runs `total` tasks, CONCURRENCY at a time: tasks per second and CPU per task. */
async function rate(db: Db, total: number, task: (i: number) => Promise<void>): Promise<Rate> {
  let next = 0;
  const server0 = await postgresCpuMs(db);
  const client0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < total; i = next++) await task(i);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(client0);
  const server1 = await postgresCpuMs(db);
  return {
    perSecond: total / seconds,
    clientMs: (client.user + client.system) / 1000 / total,
    serverMs: server0 === null || server1 === null ? null : (server1 - server0) / total,
  };
}

async function pair(db: Db, licenseId: string): Promise<void> {
  const fineTuneId = randomUUID();
  const reserved = await reserveCredits(db, { fineTuneId, licenseId, amount: 100n, model: 'gpt-4o-mini' });
  if (!reserved.ok) throw new Error(`reservation refused: ${reserved.reason}`);
  await postReservation(db, { fineTuneId, amount: 73n, tokens: 24_333n, model: 'gpt-4o-mini' });
}

const { db, drop } = await freshDatabase();
try {
  const licenses = Array.from({ length: LICENSES }, (_, i) => `bench-${i}`);
  for (const licenseId of [...licenses, 'bench-hot']) {
    await grantCredits(db, { grantId: `seed-${licenseId}`, licenseId, amount: 1_000_000_000n });
  }
  await sql`CREATE TABLE bench_commits (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())`.execute(db);
  await sql`CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)`.execute(db);
  await sql`INSERT INTO bench_counter VALUES (1, 0)`.execute(db);
  // Warm-up: connections open, plans cached.
  await rate(db, 200, (i) => pair(db, licenses[i % LICENSES] as string));

  const load0 = loadavg();
  const baseline = await rate(db, 2_000, async () => {
    await sql`INSERT INTO bench_commits DEFAULT VALUES`.execute(db);
  });
  const baselineTx = await rate(db, 2_000, async () => {
    await db.transaction().execute((tx) => sql`INSERT INTO bench_commits DEFAULT VALUES`.execute(tx));
  });
  // The ceiling for one hot license: statements that each update the same row (serialised on its lock).
  const hotRow = await rate(db, 1_000, async () => {
    await sql`UPDATE bench_counter SET n = n + 1 WHERE id = 1`.execute(db);
  });
  const spread = await rate(db, SPREAD_PAIRS, (i) => pair(db, licenses[i % LICENSES] as string));
  const hot = await rate(db, HOT_PAIRS, () => pair(db, 'bench-hot'));
  const load1 = loadavg();

  const auditStarted = performance.now();
  const { violations } = await auditLedger(db);
  const auditMs = performance.now() - auditStarted;
  const transfers = await db
    .selectFrom('ledger_transfers')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();

  const fmt = (n: number) => n.toFixed(0).padStart(7);
  const cpu = (r: Rate) =>
    `cpu/op client ${r.clientMs.toFixed(3)} ms, server ${r.serverMs === null ? 'n/a' : `${r.serverMs.toFixed(3)} ms`}`;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(
    `concurrency ${CONCURRENCY}, one pool; each reserve and each post is one statement, its own transaction`,
  );
  console.log(`load average ${load(load0)} before, ${load(load1)} after (${cpus().length} CPUs)`);
  console.log(`baseline  one-row insert statements:   ${fmt(baseline.perSecond)} /s  ${cpu(baseline)}`);
  console.log(`baseline  same-row update statements:  ${fmt(hotRow.perSecond)} /s  ${cpu(hotRow)}`);
  console.log(`(one-row insert in BEGIN/COMMIT:        ${fmt(baselineTx.perSecond)} /s  ${cpu(baselineTx)})`);
  console.log(
    `spread    reserve+post pairs (${LICENSES} licenses): ${fmt(spread.perSecond)} /s  (target >= ${TARGET_SPREAD}; ${(
      (2 * spread.perSecond) / baseline.perSecond
    ).toFixed(2)}x baseline in transactions)  ${cpu(spread)} per pair`,
  );
  console.log(
    `hot       reserve+post pairs (1 license):     ${fmt(hot.perSecond)} /s  (target >= ${TARGET_HOT}; ${(
      (2 * hot.perSecond) / hotRow.perSecond
    ).toFixed(2)}x same-row baseline in transactions)  ${cpu(hot)} per pair`,
  );
  console.log(`ratio     hot / spread: ${(hot.perSecond / spread.perSecond).toFixed(2)}`);
  console.log(
    `audit     ${transfers.n} transfers checked in ${auditMs.toFixed(0)} ms: ${violations.length} violations`,
  );
  if (spread.perSecond < TARGET_SPREAD)
    console.log(`TARGET MISSED: spread ${spread.perSecond.toFixed(0)}/s < ${TARGET_SPREAD}/s`);
  if (hot.perSecond < TARGET_HOT)
    console.log(`TARGET MISSED: hot ${hot.perSecond.toFixed(0)}/s < ${TARGET_HOT}/s`);
  if (violations.length > 0) {
    console.log('TARGET MISSED: the auditor found violations');
    for (const v of violations.slice(0, 10)) console.log(`  [${v.invariant}] ${v.detail}`);
  }
} finally {
  await drop();
}
