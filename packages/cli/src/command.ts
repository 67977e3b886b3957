import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A `tuneline` subcommand. Each lives in its own file under commands/ and is listed in commands/index.ts. */
export interface Command {
  name: string;
  /** One line for `tuneline --help`. */
  summary: string;
  /** Full usage text for `tuneline <name> --help`. */
  usage: string;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** A usage error: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** node:util `parseArgs` whose errors (unknown option, missing value) are usage errors: exit 2 with the usage. */
export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
