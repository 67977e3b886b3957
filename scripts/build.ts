// `npm run build`: compiles every Tuneline process (the six workers, the API, the CLI) into
// `<package>/dist/main.js`, so production starts plain JavaScript instead of compiling TypeScript
// through tsx in every process. Development keeps running the sources through tsx.
//
//   node --import tsx scripts/build.ts [--force] [target ...]   build the stale targets (default: all)
//   node --import tsx scripts/build.ts --link DIR               after `pnpm deploy`: link DIR's bundle to
//                                                                the node_modules of the deployed tree
//
// Each bundle holds the entry and the workspace packages it imports (TypeScript, imported by `.ts`
// paths through package exports), nothing from node_modules: those packages stay external and load
// exactly as they do under tsx, through links in dist/node_modules (packages/devstack/src/build.ts says
// why and how). A module that uses import.meta.url / dirname / filename gets the values of its source
// file, as under tsx, so it finds its files (the API's public/, the checkout root) from the bundle too;
// only the entry module keeps the bundle's own (it is the module that runs, `import.meta.url ===
// argv[1]` holds for it). Several builds at once (test files, the demo) take turns on a lock.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BUILD_FORMAT,
  BUILD_RECORD,
  type BuildRecord,
  type BuildTarget,
  buildTargets,
  fileStamp,
  findPackageDir,
  linkBundle,
  readBuildRecord,
  staleReason,
  writeFileAtomic,
} from '@tuneline/devstack';
import { build, type Plugin } from 'esbuild';

/** This checkout: what `npm run build` builds. */
const checkout = join(import.meta.dirname, '..');

/** Defines import.meta for bundled modules: `base` leads from the bundle to the module's package. */
const BANNER = `import { realpathSync as __tunelineRealpath } from 'node:fs';
import { dirname as __tunelineDirname, join as __tunelineJoin } from 'node:path';
import { fileURLToPath as __tunelineToPath, pathToFileURL as __tunelineToUrl } from 'node:url';
function __tunelineSourceMeta(base, file) {
  const filename = __tunelineJoin(__tunelineRealpath(__tunelineToPath(new URL(base, import.meta.url))), file);
  return { url: __tunelineToUrl(filename).href, filename, dirname: __tunelineDirname(filename) };
}`;

const RESOLVING = Symbol('resolving');
const NODE_MODULES = `${sep}node_modules${sep}`;

interface PackageInfo {
  dir: string;
  name: string;
}

const packages = new Map<string, PackageInfo>();
/** The package a file belongs to (its nearest package.json). */
function packageOf(file: string): PackageInfo {
  const dir = dirname(file);
  let info = packages.get(dir);
  if (!info) {
    let manifest: { name?: string } | undefined;
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!manifest && dirname(dir) === dir) throw new Error(`${file} belongs to no package`);
    info = manifest ? { dir, name: manifest.name ?? dir } : packageOf(dir);
    packages.set(dir, info);
  }
  return info;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageName = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

interface Bundled {
  /** node_modules packages the bundle imports: name → [real directory, the workspace package importing it]. */
  externals: Map<string, { dir: string; from: string }>;
  /** Workspace package → the package that imports it. */
  workspace: Record<string, string>;
  /** Workspace packages (not the entry's) whose modules use import.meta. */
  withImportMeta: Set<string>;
}

function workspacePlugin(root: string, t: BuildTarget, entryPackage: string, bundled: Bundled): Plugin {
  return {
    name: 'tuneline-workspace',
    setup(b) {
      // Bare imports: workspace packages go into the bundle, node_modules packages stay outside.
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === RESOLVING || isBuiltin(args.path)) return undefined;
        const resolved = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: RESOLVING,
        });
        if (resolved.errors.length) return { errors: resolved.errors };
        const from = packageOf(args.importer).name;
        if (resolved.path.includes(NODE_MODULES)) {
          const name = packageName(args.path);
          const marker = `${NODE_MODULES}${name.split('/').join(sep)}${sep}`;
          const dir = resolved.path.slice(0, resolved.path.lastIndexOf(marker) + marker.length - 1);
          const seen = bundled.externals.get(name);
          if (seen && seen.dir !== dir) {
            return {
              errors: [
                {
                  text: `${t.name}: two copies of ${name} would load (${seen.from} gets ${seen.dir}, ${from} gets ${dir}); give both the same version`,
                },
              ],
            };
          }
          bundled.externals.set(name, seen ?? { dir, from });
          return { path: args.path, external: true };
        }
        const pkg = packageOf(resolved.path).name;
        if (pkg !== entryPackage) bundled.workspace[pkg] ??= from;
        return { path: resolved.path, namespace: resolved.namespace, sideEffects: resolved.sideEffects };
      });
      // import.meta of a workspace module: the values of its source file (see the banner).
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
        if (args.path.includes(NODE_MODULES) || args.path === t.entry) return undefined;
        const source = readFileSync(args.path, 'utf8');
        if (!/\bimport\.meta\b/.test(source)) return undefined;
        const pkg = packageOf(args.path);
        const base = pkg.name === entryPackage ? '../' : `./node_modules/${pkg.name}/`;
        if (pkg.name !== entryPackage) bundled.withImportMeta.add(pkg.name);
        const rewritten = source.replace(/\bimport\.meta\.(url|dirname|filename)\b/g, '__tunelineMeta.$1');
        const left = /\bimport\.meta\b.*/.exec(rewritten);
        if (left) {
          const line = rewritten.slice(0, left.index).split('\n').length;
          return {
            errors: [
              {
                text: `${relative(root, args.path)}:${line}: only import.meta.url, .dirname and .filename can be bundled (found "${left[0].trim()}")`,
              },
            ],
          };
        }
        const meta = `const __tunelineMeta = __tunelineSourceMeta(${JSON.stringify(base)}, ${JSON.stringify(relative(pkg.dir, args.path))});`;
        return { contents: meta + rewritten, loader: /\.[cm]?ts$/.test(extname(args.path)) ? 'ts' : 'js' };
      });
    },
  };
}

/**
 * Bundles one target of the workspace at `root`: writes dist/main.js (and its source map), links what it
 * needs into dist/node_modules, and writes dist/build.json last.
 */
export async function bundle(root: string, t: BuildTarget): Promise<BuildRecord> {
  const entryPackage = packageOf(t.entry).name;
  const bundled: Bundled = { externals: new Map(), workspace: {}, withImportMeta: new Set() };
  // Sub-millisecond clock: Date.now() truncates, so a file written in the same millisecond just before
  // the start (its mtime is fractional) looked "saved during the build" and the bundle stale at once.
  const preciseNow = () => performance.timeOrigin + performance.now();
  const startedAt = preciseNow();
  const result = await build({
    absWorkingDir: root,
    entryPoints: [t.entry],
    outfile: t.outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The oldest Node Tuneline supports (package.json engines); 22 and 24 run it too.
    target: 'node20.11',
    // Class and function names stay as written (logs and error names use them).
    keepNames: true,
    // Not loaded by default (Node's --enable-source-maps costs 0.5-1 s of start-up for these bundles);
    // there for NODE_OPTIONS=--enable-source-maps when a stack trace must name the .ts lines.
    sourcemap: 'linked',
    sourcesContent: false,
    banner: { js: BANNER },
    metafile: true,
    write: false,
    logLevel: 'silent',
    plugins: [workspacePlugin(root, t, entryPackage, bundled)],
  });
  for (const warning of result.warnings) process.stderr.write(`build ${t.name}: warning: ${warning.text}\n`);

  const fromPackage = (path: string) => relative(t.packageDir, path);
  const inputs: BuildRecord['inputs'] = {};
  const finishedAt = preciseNow();
  const stamp = (path: string) => {
    const s = fileStamp(path);
    if (!s) throw new Error(`build ${t.name}: ${path} vanished during the build`);
    // Saved while esbuild ran: the bundle may hold the older content, so record a stamp that never
    // matches and the next check builds again.
    inputs[fromPackage(path)] = s[0] >= startedAt && s[0] <= finishedAt ? [-1, s[1]] : s;
  };
  for (const file of Object.keys(result.metafile.inputs)) {
    const path = join(root, file);
    stamp(path);
    stamp(join(packageOf(path).dir, 'package.json'));
  }
  for (const { dir } of bundled.externals.values()) stamp(join(dir, 'package.json'));
  // How the bundle is made: this script, esbuild, the TypeScript settings esbuild reads.
  stamp(import.meta.filename);
  stamp(join(findPackageDir('esbuild', import.meta.dirname) ?? '', 'package.json'));
  if (existsSync(join(root, 'tsconfig.json'))) stamp(join(root, 'tsconfig.json'));

  const record: BuildRecord = {
    format: BUILD_FORMAT,
    package: entryPackage,
    entry: fromPackage(t.entry),
    inputs,
    links: [
      ...[...bundled.externals].map(([name, { from }]) => ({ name, from })),
      ...[...bundled.withImportMeta].map((name) => ({ name, from: bundled.workspace[name]! })),
    ].sort((a, b) => a.name.localeCompare(b.name)),
    workspace: bundled.workspace,
  };
  for (const file of result.outputFiles) writeFileAtomic(file.path, file.contents);
  linkBundle(t.packageDir, record);
  // Last: a reader that sees the new record finds the bundle and the links it describes.
  writeFileAtomic(join(t.packageDir, 'dist', BUILD_RECORD), `${JSON.stringify(record, null, 1)}\n`);
  return record;
}

/** Runs `fn` holding `.tuneline/build.lock`; waits while another build holds it. */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(checkout, '.tuneline', 'build.lock');
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockIsAbandoned(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`${lock} has been held for 5 minutes; remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The lock's holder has exited (or never wrote its pid within 10 s). */
function lockIsAbandoned(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return true;
    if (code === 'ENOENT') {
      try {
        return Date.now() - statSync(lock).mtimeMs > 10_000;
      } catch {
        return false;
      }
    }
    return false;
  }
}

async function main(argv: string[]): Promise<number> {
  const linkAt = argv.indexOf('--link');
  if (linkAt >= 0) {
    const dir = argv[linkAt + 1];
    const record = dir ? readBuildRecord(dir) : undefined;
    if (!dir || !record) {
      process.stderr.write(`build --link: ${dir ?? '(no directory)'} has no dist/${BUILD_RECORD}\n`);
      return 2;
    }
    linkBundle(dir, record);
    process.stderr.write(
      `build: linked ${record.links.length} packages into ${join(dir, 'dist', 'node_modules')}\n`,
    );
    return 0;
  }
  const force = argv.includes('--force');
  const names = argv.filter((a) => !a.startsWith('--'));
  const all = buildTargets(checkout);
  const unknown = names.filter((n) => !all.some((t) => t.name === n));
  if (unknown.length) {
    process.stderr.write(
      `build: unknown target ${unknown.join(', ')} (targets: ${all.map((t) => t.name).join(', ')})\n`,
    );
    return 2;
  }
  const selected = names.length ? all.filter((t) => names.includes(t.name)) : all;
  return withBuildLock(async () => {
    // Another build may have finished what this one was asked for while it waited for the lock.
    const todo = force ? selected : selected.filter((t) => staleReason(t));
    if (!todo.length) {
      process.stderr.write(`build: ${selected.map((t) => t.name).join(', ')} up to date\n`);
      return 0;
    }
    const started = Date.now();
    const results = await Promise.allSettled(todo.map((t) => bundle(checkout, t)));
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      failed++;
      const err = r.reason as {
        errors?: { text: string; location?: { file: string; line: number } | null }[];
      };
      const lines = err.errors?.map((e) =>
        e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text,
      );
      process.stderr.write(
        `build ${todo[i]!.name} failed:\n  ${(lines ?? [String(r.reason)]).join('\n  ')}\n`,
      );
    });
    const written = todo.filter((_, i) => results[i]!.status === 'fulfilled');
    process.stderr.write(
      `build: ${written.length} of ${todo.length} bundles written in ${Date.now() - started} ms (${written
        .map((t) => relative(checkout, t.outfile))
        .join(', ')})\n`,
    );
    return failed ? 1 : 0;
  });
}

// Run as a script; imported (the build's test), it only provides bundle().
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
