import { createDb, MIGRATION_NAMES, migrateToLatest, withDatabase } from '@tuneline/db';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../support/context.ts';

describe('migrations', () => {
  const name = `tuneline_test_${Math.floor(Date.now() / 1000)}_mig${process.pid}`;
  let admin: pg.Client;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: databaseUrl() });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}"`);
  });
  afterAll(async () => {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });

  it('migrate an empty database from four processes at once: each succeeds, every migration runs once', async () => {
    const url = withDatabase(databaseUrl(), name);
    const dbs = Array.from({ length: 4 }, () => createDb(url, { max: 2 }));
    try {
      const results = await Promise.all(dbs.map((db) => migrateToLatest(db)));
      const applied = results.flatMap((r) => r.results ?? []).filter((r) => r.status === 'Success');
      expect(applied.map((r) => r.migrationName).sort()).toEqual(MIGRATION_NAMES);
      const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
        dbs[0]!,
      );
      expect(rows.rows.map((r) => r.name)).toEqual(MIGRATION_NAMES);
      // And a later run has nothing left to do.
      const again = await migrateToLatest(dbs[0]!);
      expect(again.results).toEqual([]);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
  });
});

describe('template clone per test file', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  beforeAll(async () => {
    [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterAll(async () => {
    await Promise.all([a.drop(), b.drop()]);
  });

  it('gives each file its own migrated database', async () => {
    expect(a.name).not.toEqual(b.name);
    await a.db.insertInto('licenses').values({ id: 'lic-a', name: 'A' }).execute();
    const inA = await a.db.selectFrom('licenses').select('id').execute();
    const inB = await b.db.selectFrom('licenses').select('id').execute();
    expect(inA.map((r) => r.id)).toEqual(['lic-a']);
    expect(inB).toEqual([]);
  });

  it('refuses updates and deletes of ledger transfers', async () => {
    await a.db
      .insertInto('ledger_accounts')
      .values([
        { id: 'acct-x', kind: 'license', license_id: 'lic-x' },
        { id: 'acct-y', kind: 'license', license_id: 'lic-y' },
      ])
      .execute();
    await a.db
      .insertInto('ledger_transfers')
      .values({
        id: 'grant-1',
        kind: 'grant',
        debit_account_id: 'acct-y',
        credit_account_id: 'acct-x',
        amount: 5,
      })
      .execute();
    await expect(a.db.updateTable('ledger_transfers').set({ amount: 6 }).execute()).rejects.toThrow(
      /append-only/,
    );
    await expect(a.db.deleteFrom('ledger_transfers').execute()).rejects.toThrow(/append-only/);
  });
});
