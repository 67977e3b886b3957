import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { readServiceManifests } from './services.ts';

/**
 * The compiled form of each Tuneline process: `<package>/dist/main.js`, one ES module bundled by esbuild
 * (scripts/build.ts) from `<package>/src/main.ts` and the workspace packages it imports. Packages from
 * node_modules stay outside the bundle and load as they do under tsx; the bundle finds them through
 * links in `<package>/dist/node_modules`, made by the build in a checkout and again after `pnpm deploy`
 * in the images (whose node_modules are laid out differently). `dist/build.json` records what the
 * bundle was made from, so a checkout can tell a fresh bundle from a stale one without building.
 *
 * This module is the part that needs no esbuild: the targets, the record, the freshness check, the
 * links. Development keeps running the sources through tsx; `tuneline workers`, the demo, the harness
 * and the tests run the bundles, built first when stale (`ensureBuilt`).
 */

/** One process to compile. */
export interface BuildTarget {
  /** A service name, `api` or `cli`. */
  name: string;
  packageDir: string;
  /** `<packageDir>/src/main.ts` */
  entry: string;
  /** `<packageDir>/dist/main.js` */
  outfile: string;
}

/** Bumped whenever the build changes what it writes: a bundle of another format is stale. */
export const BUILD_FORMAT = 1;
export const BUILD_RECORD = 'build.json';

/** `dist/build.json`: what a bundle was made from and what it needs beside it. */
export interface BuildRecord {
  format: number;
  /** The bundled entry, relative to the package directory. */
  entry: string;
  /** Every file the bundle depends on, relative to the package directory: [mtime in ms, size]. */
  inputs: Record<string, [number, number]>;
  /**
   * The packages it links in dist/node_modules, each with the workspace package whose dependency it is
   * (found from there, as Node would): the node_modules packages the bundle imports, and the workspace
   * packages whose modules read their own location (import-meta url, dirname or filename: they find
   * their files through the link).
   */
  links: { name: string; from: string }[];
  /** Each workspace package in the bundle, with the package that imports it (the way to find it). */
  workspace: Record<string, string>;
  /** The entry package's name. */
  package: string;
}

/** Where the compiled form of an entry `<package>/src/main.ts` is. */
export function compiledEntry(entry: string): string {
  return join(dirname(dirname(entry)), 'dist', 'main.js');
}

/** The target of a package whose entry is `<packageDir>/src/main.ts`. */
export function buildTarget(name: string, packageDir: string): BuildTarget {
  const entry = join(packageDir, 'src', 'main.ts');
  return { name, packageDir, entry, outfile: compiledEntry(entry) };
}

/** Every process that has a compiled form: the workers (from the queue catalogue), the API, the CLI. */
export function buildTargets(root: string): BuildTarget[] {
  return [
    ...readServiceManifests(root).map((m) => buildTarget(m.service, dirname(dirname(m.entry)))),
    buildTarget('api', join(root, 'packages', 'api')),
    buildTarget('cli', join(root, 'packages', 'cli')),
  ];
}

export function readBuildRecord(packageDir: string): BuildRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(packageDir, 'dist', BUILD_RECORD), 'utf8')) as BuildRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** [mtime, size] of a file, or undefined when it is gone. */
export function fileStamp(path: string): [number, number] | undefined {
  try {
    const s = statSync(path);
    return [s.mtimeMs, s.size];
  } catch {
    return undefined;
  }
}

/**
 * Why a target's bundle cannot be used as it is (null: it is fresh). Stat calls only: a source file
 * whose modification time or size differs from the build's record makes it stale.
 */
export function staleReason(t: BuildTarget): string | null {
  const record = readBuildRecord(t.packageDir);
  if (!record || !existsSync(t.outfile)) return 'not built yet';
  if (record.format !== BUILD_FORMAT) return 'built by another version of scripts/build.ts';
  for (const [file, stamp] of Object.entries(record.inputs)) {
    const path = join(t.packageDir, file);
    const now = fileStamp(path);
    if (!now) return `${relative(process.cwd(), path)} is gone`;
    if (now[0] !== stamp[0] || now[1] !== stamp[1]) return `${relative(process.cwd(), path)} changed`;
  }
  for (const link of record.links) {
    if (!existsSync(join(t.packageDir, 'dist', 'node_modules', link.name, 'package.json')))
      return `dist/node_modules/${link.name} is missing`;
  }
  return null;
}

/**
 * Builds the targets whose bundle is missing or stale (scripts/build.ts, in its own process; it takes
 * a lock, so concurrent callers build once), saying so on stderr. Fresh targets cost a few stat calls.
 */
export function ensureBuilt(
  root: string,
  targets: BuildTarget[],
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): void {
  const stale = targets.flatMap((t) => {
    const reason = staleReason(t);
    return reason ? [{ t, reason }] : [];
  });
  if (!stale.length) return;
  const script = join(root, 'scripts', 'build.ts');
  const names = stale.map((s) => s.t.name);
  log(
    `tuneline: building ${names.join(', ')} into <package>/dist (${stale
      .map((s) => `${s.t.name}: ${s.reason}`)
      .join('; ')})`,
  );
  if (!existsSync(script)) throw new Error(`cannot build ${names.join(', ')}: ${script} is missing`);
  const started = Date.now();
  const result = spawnSync(process.execPath, ['--import', 'tsx', script, ...names], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) {
    throw new Error(`scripts/build.ts ${names.join(' ')} failed (exit ${result.status ?? result.signal})`);
  }
  log(`tuneline: built ${names.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** The real directory of package `name` as Node finds it from `fromDir` (node_modules, walking up). */
export function findPackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Makes `<packageDir>/dist/node_modules/<name>` point at each package the bundle links, found the way
 * Node finds it from the workspace package that depends on it (that package found, in turn, through
 * the packages that import it, from the entry package). Works on a checkout and on a `pnpm deploy`
 * tree alike. Each link is replaced by a rename, so a process starting meanwhile sees the old or the
 * new link, never none.
 */
export function linkBundle(packageDir: string, record: BuildRecord): void {
  const located = new Map<string, string>([[record.package, realpathSync(packageDir)]]);
  const locate = (name: string, trail: string[] = []): string => {
    const known = located.get(name);
    if (known) return known;
    const parent = record.workspace[name];
    if (!parent || trail.includes(name)) throw new Error(`${BUILD_RECORD}: no way to find ${name}`);
    const dir = findPackageDir(name, locate(parent, [...trail, name]));
    if (!dir) throw new Error(`${name} (a dependency of ${parent}) is not installed under ${packageDir}`);
    located.set(name, dir);
    return dir;
  };
  const linkDir = join(packageDir, 'dist', 'node_modules');
  const wanted = new Set<string>();
  for (const { name, from } of record.links) {
    const target = name in record.workspace ? locate(name) : findPackageDir(name, locate(from));
    if (!target) throw new Error(`${name} (a dependency of ${from}) is not installed under ${packageDir}`);
    const link = join(linkDir, name);
    mkdirSync(dirname(link), { recursive: true });
    const temp = `${link}.${process.pid}.tmp`;
    rmSync(temp, { force: true });
    symlinkSync(relative(dirname(link), target), temp);
    renameSync(temp, link);
    wanted.add(name);
  }
  // Links of an earlier build that this one no longer needs.
  if (!existsSync(linkDir)) return;
  for (const entry of readdirSync(linkDir)) {
    const names = entry.startsWith('@')
      ? readdirSync(join(linkDir, entry)).map((sub) => `${entry}/${sub}`)
      : [entry];
    for (const name of names) if (!wanted.has(name)) rmSync(join(linkDir, name), { force: true });
  }
}

/** Writes a file by renaming a finished temporary file over it: readers see the old or the new content. */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}
