/**
 * Where tests find Postgres and Redis: TEST_DATABASE_URL / TEST_REDIS_URL, then DATABASE_URL /
 * REDIS_URL. `npm test` sets them from the devstack; running vitest directly needs them set
 * (or a Docker engine, see global-setup.ts).
 */
export function testUrls(env: NodeJS.ProcessEnv = process.env): { databaseUrl?: string; redisUrl?: string } {
  return {
    databaseUrl: env.TEST_DATABASE_URL ?? env.DATABASE_URL,
    redisUrl: env.TEST_REDIS_URL ?? env.REDIS_URL,
  };
}
