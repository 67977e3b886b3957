import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDb, migrateToLatest, withDatabase } from '@tuneline/db';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { testUrls } from './env.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
    templateDatabase: string;
  }
}

const TEMPLATE_LOCK_KEY = 7_140_915_002;
const STALE_MS = 2 * 3600 * 1000;

/** A name that changes whenever a migration's source changes, so a stale template is never reused. */
function templateName(): string {
  const dir = join(import.meta.dirname, '../../packages/db/src/migrations');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  return `tuneline_tpl_${hash.digest('hex').slice(0, 12)}`;
}

async function startContainers(): Promise<{
  databaseUrl: string;
  redisUrl: string;
  stop: () => Promise<void>;
}> {
  // Only reached when no URLs are given: testcontainers needs a Docker engine.
  const { GenericContainer, Wait } = await import('testcontainers');
  const postgres = await new GenericContainer('postgres:16-alpine')
    .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const redis = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  return {
    databaseUrl: `postgres://postgres:postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/postgres`,
    redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
    stop: async () => {
      await postgres.stop();
      await redis.stop();
    },
  };
}

export default async function setup(project: TestProject) {
  let { databaseUrl, redisUrl } = testUrls();
  let stopContainers: (() => Promise<void>) | undefined;
  if (!databaseUrl || !redisUrl) {
    try {
      const started = await startContainers();
      databaseUrl ??= started.databaseUrl;
      redisUrl ??= started.redisUrl;
      stopContainers = started.stop;
    } catch (err) {
      throw new Error(
        'Tests need Postgres and Redis. Run them with `npm test` (which finds or starts both), or set ' +
          'TEST_DATABASE_URL and TEST_REDIS_URL (or DATABASE_URL and REDIS_URL); no Docker engine answered ' +
          `for testcontainers either (${err instanceof Error ? err.message : String(err)}).`,
      );
    }
  }

  const template = templateName();
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    // Several vitest runs may share a server: one builds the template, the others wait for it.
    await admin.query('select pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
    const exists = await admin.query('select 1 from pg_database where datname = $1', [template]);
    if (exists.rowCount === 0) {
      const building = `${template}_build_${process.pid}`;
      await admin.query(`drop database if exists "${building}"`);
      await admin.query(`create database "${building}"`);
      const db = createDb(withDatabase(databaseUrl, building), { max: 2 });
      try {
        await migrateToLatest(db);
      } finally {
        await db.destroy();
      }
      await admin.query(`alter database "${building}" rename to "${template}"`);
    }
    // Databases left by killed runs (name carries their creation time).
    const stale = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like 'tuneline_test_%'`,
    );
    for (const { datname } of stale.rows) {
      const created = Number(datname.split('_')[2]);
      if (Number.isFinite(created) && Date.now() - created * 1000 > STALE_MS) {
        await admin.query(`drop database if exists "${datname}" with (force)`);
      }
    }
  } finally {
    await admin.query('select pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]).catch(() => {});
    await admin.end();
  }

  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('templateDatabase', template);
  return async () => {
    await stopContainers?.();
  };
}
