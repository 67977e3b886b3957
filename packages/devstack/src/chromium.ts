import { installWithApt, isExecutable, StackError, which } from './system.ts';

/**
 * The browser the hub's test drives (playwright-core cannot download one here): CHROMIUM_PATH when set,
 * else the usual install paths and names, else Debian's `chromium` installed with apt-get when permitted.
 */

/** Where Chromium (or Chrome, which playwright-core drives the same way) usually is, in this order. */
export const CHROMIUM_PATHS: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/snap/bin/chromium',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
];
/** Command names looked up on PATH after the paths above. */
export const CHROMIUM_NAMES: readonly string[] = [
  'chromium',
  'chromium-browser',
  'google-chrome-stable',
  'google-chrome',
];
export const CHROMIUM_PACKAGE = 'chromium';

export interface FoundChromium {
  path: string;
  /** Where it came from, for one line of output. */
  note: string;
}

export interface ChromiumOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Absolute paths to try before PATH (default CHROMIUM_PATHS). */
  paths?: readonly string[];
}

const HELP = [
  "The hub's browser test (test/api/hub.test.ts) needs Chromium. Options:",
  `  - install Debian's ${CHROMIUM_PACKAGE} package: apt-get install -y --no-install-recommends ${CHROMIUM_PACKAGE}`,
  '    (npm test does this itself when it runs as root with apt-get and TUNELINE_NO_INSTALL is unset)',
  '  - or set CHROMIUM_PATH to a Chromium or Chrome binary',
  '  - or run other tests only, e.g. npm test -- test/contracts',
].join('\n');

/** Chromium if it is already here (CHROMIUM_PATH must point at an executable when set); null otherwise. */
export function findChromium(opts: ChromiumOptions = {}): FoundChromium | null {
  const env = opts.env ?? process.env;
  if (env.CHROMIUM_PATH) {
    if (!isExecutable(env.CHROMIUM_PATH)) {
      throw new StackError(
        `CHROMIUM_PATH is set to ${env.CHROMIUM_PATH}, which is not an executable file.\n${HELP}`,
      );
    }
    return { path: env.CHROMIUM_PATH, note: 'CHROMIUM_PATH' };
  }
  for (const path of opts.paths ?? CHROMIUM_PATHS) {
    if (isExecutable(path)) return { path, note: path };
  }
  for (const name of CHROMIUM_NAMES) {
    const path = which(name, env);
    if (path) return { path, note: `${name} on PATH` };
  }
  return null;
}

/** Chromium for the hub's test: found, or installed from Debian's packages when permitted; else a StackError. */
export function ensureChromium(opts: ChromiumOptions = {}): FoundChromium {
  const found = findChromium(opts);
  if (found) return found;
  const env = opts.env ?? process.env;
  const paths = opts.paths ?? CHROMIUM_PATHS;
  installWithApt({
    pkg: CHROMIUM_PACKAGE,
    missing: `No Chromium found (CHROMIUM_PATH unset, none at ${paths.join(', ') || 'the usual paths'}, no ${CHROMIUM_NAMES.join('/')} on PATH)`,
    help: HELP,
    env,
    log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
  });
  const installed = findChromium(opts);
  if (!installed)
    throw new StackError(`apt-get installed ${CHROMIUM_PACKAGE} but no Chromium was found.\n${HELP}`);
  return { path: installed.path, note: `${installed.path} (installed now with apt-get)` };
}
