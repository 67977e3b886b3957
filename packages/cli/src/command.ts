import { type ParseArgsConfig, parseArgs } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

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

/**
 * node:util `parseArgs` of `args` with `options` (strict: an unknown option is an error; `config` adds
 * positionals, say), whose errors (unknown option, missing value) are usage errors: exit 2 with the usage.
 */
export function parseOptions<
  O extends OptionsConfig,
  C extends Omit<ParseArgsConfig, 'args' | 'options' | 'strict'> = Record<never, never>,
>(
  args: string[],
  options: O,
  config?: C,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true } & C>> {
  try {
    const full = { ...config, args, options, strict: true } as unknown;
    return parseArgs(full as { args: string[]; options: O; strict: true } & C);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
