import { randomBytes } from 'node:crypto';
import { createDb, type Db, migrateToLatest, withDatabase } from '@tuneline/db';
import { dropDatabase } from '@tuneline/devstack';
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
