import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

// bigint (int8) columns stay strings: credits must never pass through a float.
export type Db = Kysely<Database>;
/** What repositories take: the database itself, or a transaction the caller opened. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface DbOptions {
  /** Max pool size. Workers need few connections; tests and the API a few more. */
  max?: number;
  applicationName?: string;
}

export function createDb(connectionString: string, opts: DbOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'tuneline',
    // Fail fast instead of hanging when Postgres is away; callers retry through the queue.
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its server (restart, pg_terminate_backend) must not crash the process.
  pool.on('error', () => {});
  // Nor may a checked-out one between two queries of a transaction: pg emits the socket error on the
  // client, where no listener means an uncaught exception. The transaction's next query fails instead,
  // and the pool drops the broken client when it is released.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Replaces the database name of a connection URL (tests clone a template per file). */
export function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Runs several reads on one snapshot (a READ ONLY, REPEATABLE READ transaction, or the caller's), for a
 * view made of more than one statement: separate reads could straddle a commit that changes both (a
 * model ended with its deployment, a promotion decided with its alias move) and show half of it.
 */
export async function inSnapshot<T>(db: Executor, read: (tx: Executor) => Promise<T>): Promise<T> {
  if (db.isTransaction) return read(db);
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
}
