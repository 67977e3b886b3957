import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type FindDatabaseOptions,
  findDatabase,
  findRedis,
  type LocalServer,
  redact,
  StackError,
} from '@tuneline/devstack';

/**
 * DATABASE_URL (and REDIS_URL) for a command run from a checkout, as `npm test` and `npm run demo` find
 * them: what the environment sets wins; when unset, the running servers of the dev stack, preferring
 * the demo's database (devstack's findDatabase). Nothing is ever started: a CLI command that started a
 * Postgres and stopped it on exit would race `npm test` and the demo for its data directory and port.
 * In the images' deployed trees (no checkout around the CLI) nothing is looked up, so a missing
 * DATABASE_URL stays a configuration error there rather than a quiet connection to some local server.
 */

const checkout = join(import.meta.dirname, '../../..');
const inCheckout = existsSync(join(checkout, 'pnpm-workspace.yaml'));

/** Usage text of a command that needs the database (and Redis): where it looks when they are unset. */
export function devStackUsage(variables = 'DATABASE_URL'): string {
  return [
    `When ${variables} is unset, a checkout uses the running servers that npm test and npm run demo`,
    "use, for Postgres the demo's database first (README, Command line). Nothing is started.",
  ].join('\n');
}

export interface StackNeeds {
  /** The command also needs Redis (REDIS_URL). */
  redis?: boolean;
  /** The command reads Tuneline's tables, so a found database must be migrated (all but `migrate`). */
  schema?: boolean;
}

/** Where to look (tests point it at servers they control; commands use the dev stack's defaults). */
export interface StackLookup extends Omit<FindDatabaseOptions, 'root'> {
  redisServers?: readonly LocalServer[];
}

/** `env` with DATABASE_URL (and REDIS_URL) filled in from the dev stack when unset; says on stderr what it found. */
export async function withDevStack(
  env: NodeJS.ProcessEnv,
  needs: StackNeeds = {},
  lookup: StackLookup = {},
): Promise<NodeJS.ProcessEnv> {
  if (!inCheckout) return env;
  const filled = { ...env };
  if (!env.DATABASE_URL) {
    const found = await findDatabase({ ...lookup, root: checkout });
    if (needs.schema && !found.migrated) {
      throw new StackError(
        [
          `Found ${redact(found.url)} (${found.note}), but Tuneline's tables are not there.`,
          'Run `npx tuneline migrate` to create them in that database, run `npm run demo` to get the',
          "demo's database, or set DATABASE_URL to a migrated database.",
        ].join('\n'),
      );
    }
    process.stderr.write(`tuneline: using ${redact(found.url)} (found: ${found.note})\n`);
    filled.DATABASE_URL = found.url;
  }
  if (needs.redis && !env.REDIS_URL) {
    const found = await findRedis(lookup.redisServers);
    process.stderr.write(`tuneline: using ${found.url} (found: ${found.note})\n`);
    filled.REDIS_URL = found.url;
  }
  return filled;
}
