import { randomBytes } from 'node:crypto';
import { createDb, type Db, withDatabase } from '@tuneline/db';
import { dropDatabase } from '@tuneline/devstack';
import { deleteQueueKeys } from '@tuneline/harness';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  name: string;
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated database cloned from the run's template (fast: a file copy on the server). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const baseUrl = inject('databaseUrl');
  const template = inject('templateDatabase');
  const name = `tuneline_test_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    // CREATE DATABASE ... TEMPLATE needs the template idle; retry briefly if another file is cloning it.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`create database "${name}" template "${template}"`);
        break;
      } catch (err) {
        if (attempt >= 50 || !/being accessed by other users/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 100));
      }
    }
  } finally {
    await admin.end();
  }
  const url = withDatabase(baseUrl, name);
  const db = createDb(url, { max: 10, applicationName: 'tuneline-test' });
  return {
    name,
    url,
    db,
    drop: async () => {
      await db.destroy();
      await dropDatabase(baseUrl, name);
    },
  };
}

/** A BullMQ key prefix of its own, so test files never see each other's queues. */
export function testPrefix(): string {
  return `tltest-${randomBytes(4).toString('hex')}`;
}

export function redisUrl(): string {
  return inject('redisUrl');
}

export function databaseUrl(): string {
  return inject('databaseUrl');
}

/** A Redis client for test code (assertions, flushing a prefix). */
export function testRedis(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** Deletes every key of a BullMQ prefix: what "Redis lost its data" looks like to one test file. */
export const flushPrefix = deleteQueueKeys;

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
