import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What `npm test` / `npm run demo` / the CLI need but cannot find or set up: the message says what to do. */
export class StackError extends Error {
  override name = 'StackError';
}

/** Whether `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable `bin` on env.PATH, like `command -v` (no shell, so a test can hand it any PATH). */
export function which(bin: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, bin))) return join(dir, bin);
  }
  return null;
}

export interface AptInstall {
  /** Debian package name. */
  pkg: string;
  /** What is missing, as the start of a sentence ("No Chromium found ..."). */
  missing: string;
  /** The options, printed after the reason when nothing may be installed. */
  help: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/**
 * Installs a Debian package with apt-get, showing apt's own output as progress. Only as root, only with
 * apt-get on PATH, and never with TUNELINE_NO_INSTALL set; otherwise stops with `missing`, why nothing
 * was installed, and `help`.
 */
export function installWithApt({ pkg, missing, help, env, log }: AptInstall): void {
  const apt = which('apt-get', env);
  const refusal = env.TUNELINE_NO_INSTALL
    ? 'TUNELINE_NO_INSTALL is set'
    : !apt
      ? 'apt-get is not available'
      : process.getuid?.() !== 0
        ? 'installing system packages needs root'
        : null;
  if (refusal || !apt) {
    throw new StackError(`${missing}, and it cannot be installed here (${refusal}).\n${help}`);
  }
  log(`tuneline: ${missing}; installing Debian's ${pkg} with apt-get (set TUNELINE_NO_INSTALL=1 to refuse)`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync(apt, ['update', '-q'], { stdio: 'inherit', env: aptEnv });
    execFileSync(apt, ['install', '-y', '-q', '--no-install-recommends', pkg], {
      stdio: 'inherit',
      env: aptEnv,
    });
  } catch (err) {
    throw new StackError(
      `apt-get install ${pkg} failed: ${err instanceof Error ? err.message : String(err)}\n${help}`,
    );
  }
}
