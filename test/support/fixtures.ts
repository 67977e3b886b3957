import type { Db } from '@tuneline/db';
import type { Redis } from 'ioredis';
import { test as base } from 'vitest';
import {
  createTestDatabase,
  flushPrefix,
  redisUrl,
  type TestDatabase,
  testPrefix,
  testRedis,
} from './context.ts';
import { StageRunner } from './stage-runner.ts';

/**
 * The test API with this suite's shared fixtures, each set up once per file, for the first test (or
 * `test.beforeAll`) that names it, and torn down after the file's last test:
 *
 * - `database`: a fresh, migrated database cloned from the run's template, dropped afterwards;
 *   `db` is its Kysely handle.
 * - `prefix`: a BullMQ key prefix of the file's own; its keys are deleted afterwards.
 * - `redis`: a Redis client for test code (assertions, queues, flushing).
 * - `stages`: a `StageRunner` on `prefix`; every stage it started is closed afterwards.
 *
 * Import `test` (or `it`) from here instead of from vitest; `describe` and `expect` still come from vitest.
 * Plain `beforeAll` gets no fixtures: use `test.beforeAll(({ database }) => …)`.
 */
export const test = base
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads what a fixture needs from this pattern
  .extend('database', { scope: 'file' }, async ({}, { onCleanup }): Promise<TestDatabase> => {
    const database = await createTestDatabase();
    onCleanup(() => database.drop());
    return database;
  })
  .extend('db', { scope: 'file' }, async ({ database }): Promise<Db> => database.db)
  // biome-ignore lint/correctness/noEmptyPattern: as above
  .extend('redis', { scope: 'file' }, async ({}, { onCleanup }): Promise<Redis> => {
    const redis = testRedis();
    onCleanup(() => redis.disconnect());
    return redis;
  })
  // biome-ignore lint/correctness/noEmptyPattern: as above
  .extend('prefix', { scope: 'file' }, async ({}, { onCleanup }): Promise<string> => {
    const prefix = testPrefix();
    onCleanup(async () => {
      const redis = testRedis();
      try {
        await flushPrefix(redis, prefix);
      } finally {
        redis.disconnect();
      }
    });
    return prefix;
  })
  .extend('stages', { scope: 'file' }, async ({ prefix }, { onCleanup }): Promise<StageRunner> => {
    const runner = new StageRunner(redisUrl(), prefix);
    onCleanup(() => runner.closeAll());
    return runner;
  });

export const it = test;
