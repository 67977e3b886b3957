import { type Kysely, type MigrationResultSet, Migrator, sql } from 'kysely';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

/** Arbitrary constant key for pg_advisory_lock: serialises migrators across processes. */
const MIGRATION_LOCK_KEY = 7_140_915_001;

/**
 * Migrates to the latest version. Safe to run from several processes at once: a session-level
 * advisory lock serialises them, so the second one finds nothing left to do. (Kysely's own lock
 * table is created with CREATE TABLE IF NOT EXISTS, which itself races on a fresh database.)
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResultSet> {
  return db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
    try {
      const migrator = new Migrator({
        db: conn,
        provider: { getMigrations: async () => migrations },
        // Work lands from parallel branches, each numbering its migrations in its own range, so a
        // database may have run 0035 before 0010 arrives; each migration touches only its own tables.
        allowUnorderedMigrations: true,
      });
      const result = await migrator.migrateToLatest();
      if (result.error) {
        const failed = result.results?.find((r) => r.status === 'Error');
        const why = result.error instanceof Error ? result.error.message : String(result.error);
        throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${why}`);
      }
      return result;
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
    }
  });
}

export const MIGRATION_NAMES = Object.keys(migrations).sort();
