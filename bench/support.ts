import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildApi } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { createDb, type Db, migrateToLatest, withDatabase } from '@tuneline/db';
import { dropDatabase } from '@tuneline/devstack';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import pg from 'pg';

/** A freshly migrated database of its own on the server of `baseUrl`, dropped by `drop()`. */
export async function scratchDatabase(
  baseUrl: string,
  label: string,
  maxConnections: number,
): Promise<{ db: Db; url: string; drop(): Promise<void> }> {
  const name = `tuneline_bench_${label}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = withDatabase(baseUrl, name);
  const db = createDb(url, { max: maxConnections });
  await migrateToLatest(db);
  return {
    db,
    url,
    drop: async () => {
      await db.destroy();
      await dropDatabase(baseUrl, name);
    },
  };
}

/** DATABASE_URL, which a bench on the database needs (npm run bench sets it); exits 2, naming `bench`, without. */
export function requireDatabaseUrl(bench: string): string {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    console.error(`${bench}: DATABASE_URL is required`);
    process.exit(2);
  }
  return baseUrl;
}

/** DATABASE_URL and REDIS_URL, which a bench on both needs (npm run bench sets them); exits 2 without. */
export function requireServers(bench: string): { baseUrl: string; redisUrl: string } {
  const baseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!baseUrl || !redisUrl) {
    console.error(`${bench}: DATABASE_URL and REDIS_URL are required`);
    process.exit(2);
  }
  return { baseUrl, redisUrl };
}

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 when it cannot say). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU milliseconds (user + system) a process has used so far, from /proc; throws where there is none. */
export function pidCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}

/**
 * CPU milliseconds used so far by the backends of `db`'s database, read from /proc: only when Postgres
 * runs on this machine (null otherwise). With the client's own CPU it gives a cost per operation that
 * other load on a shared machine disturbs far less than the rates do.
 */
export async function postgresCpuMs(db: Db): Promise<number | null> {
  const { rows } = await sql<{ pid: number }>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(db);
  let total = 0;
  for (const { pid } of rows) {
    try {
      total += pidCpuMs(pid);
    } catch {
      return null;
    }
  }
  return Number.isFinite(total) ? total : null;
}

/** The API over `db` (the default catalogue) on `redis` and `queuePrefix`, listening on a free loopback port. */
export async function listeningApi(db: Db, redis: Redis, queuePrefix: string) {
  const app = await buildApi({ db, redis, queuePrefix, catalogue: defaultCatalogue });
  return { app, url: await app.listen({ port: 0, host: '127.0.0.1' }) };
}
