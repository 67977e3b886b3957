import { spawnSync } from 'node:child_process';
import {
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import {
  BUILD_RECORD,
  type BuildRecord,
  buildTarget,
  buildTargets,
  ensureBuilt,
  findPackageDir,
  linkBundle,
  readBuildRecord,
  readServiceManifests,
  staleReason,
  superviseServices,
} from '@tuneline/devstack';
import { afterAll, describe, expect } from 'vitest';
import { bundle } from '../../scripts/build.ts';
import { redisUrl, waitFor } from '../support/context.ts';
import { it } from '../support/fixtures.ts';

const root = join(import.meta.dirname, '../..');
const zodDir = findPackageDir('zod', join(root, 'packages', 'contracts'))!;
const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function write(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

function link(path: string, target: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path);
}

/**
 * A two-package workspace: @fx/app (the entry) imports @fx/lib by its `.ts` export, as Tuneline's
 * packages import each other; lib imports zod from node_modules and reads a data file next to its
 * source through import.meta.url, app one through import.meta.dirname.
 */
function fixtureWorkspace(): { ws: string; app: string; lib: string } {
  const ws = mkdtempSync(join(tmpdir(), 'tl-build-'));
  temps.push(ws);
  const app = join(ws, 'packages', 'app');
  const lib = join(ws, 'packages', 'lib');
  write(join(app, 'package.json'), JSON.stringify({ name: '@fx/app', type: 'module' }));
  write(
    join(app, 'src', 'main.ts'),
    [
      "import { pathToFileURL } from 'node:url';",
      "import { describeLib } from '@fx/lib';",
      "import { appNote } from './sub/note.ts';",
      'const entryIsMain: boolean = import.meta.url === pathToFileURL(process.argv[1]!).href;',
      'process.stdout.write(JSON.stringify({ ...describeLib(), app: appNote(), entryIsMain }));',
    ].join('\n'),
  );
  write(
    join(app, 'src', 'sub', 'note.ts'),
    [
      "import { readFileSync } from 'node:fs';",
      "import { join } from 'node:path';",
      "export const appNote = (): string => readFileSync(join(import.meta.dirname, 'note.txt'), 'utf8');",
    ].join('\n'),
  );
  write(join(app, 'src', 'sub', 'note.txt'), 'app note');
  write(
    join(lib, 'package.json'),
    JSON.stringify({ name: '@fx/lib', type: 'module', exports: { '.': './src/index.ts' } }),
  );
  write(
    join(lib, 'src', 'index.ts'),
    [
      "import { readFileSync } from 'node:fs';",
      "import { z } from 'zod';",
      'export function describeLib() {',
      "  const data = readFileSync(new URL('./data/lib.txt', import.meta.url), 'utf8');",
      '  return { lib: z.string().parse(data), libFile: import.meta.filename, zod: typeof z.object };',
      '}',
    ].join('\n'),
  );
  write(join(lib, 'src', 'data', 'lib.txt'), 'lib data');
  // pnpm's layout: each package's dependencies are links in its own node_modules.
  link(join(app, 'node_modules', '@fx', 'lib'), '../../../lib');
  link(join(lib, 'node_modules', 'zod'), zodDir);
  return { ws, app, lib };
}

/** Runs node with `args` from the repository root; its stdout as JSON. */
function runNode(args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('the build (scripts/build.ts)', () => {
  it('bundles a process that behaves as its sources do under tsx, in a checkout and in a deployed tree', async () => {
    const { app } = fixtureWorkspace();
    const target = buildTarget('app', app);
    const record = await bundle(dirname(dirname(app)), target);

    const fromSources = runNode(['--import', 'tsx', target.entry]);
    expect(fromSources).toMatchObject({
      lib: 'lib data',
      app: 'app note',
      zod: 'function',
      entryIsMain: true,
    });
    expect(runNode([target.outfile])).toEqual(fromSources);
    // The workspace package is inside the bundle; the node_modules package is not, and is linked beside it.
    const code = readFileSync(target.outfile, 'utf8');
    expect(code).toContain('function describeLib(');
    expect(code).not.toContain('ZodString');
    expect(record.links).toEqual([
      { name: '@fx/lib', from: '@fx/app' },
      { name: 'zod', from: '@fx/lib' },
    ]);
    expect(
      resolve(
        dirname(join(app, 'dist', 'node_modules', 'zod')),
        readlinkSync(join(app, 'dist', 'node_modules', 'zod')),
      ),
    ).toBe(zodDir);

    // A deployed tree lays node_modules out differently (the dependency a copy, not a workspace link)
    // and loses dist/node_modules' links; linking again finds everything inside the tree.
    const deployed = join(mkdtempSync(join(tmpdir(), 'tl-deployed-')), 'app');
    temps.push(dirname(deployed));
    cpSync(app, deployed, {
      recursive: true,
      dereference: false,
      filter: (src) => !src.includes(`${sep}dist${sep}node_modules`),
    });
    rmSync(join(deployed, 'node_modules'), { recursive: true });
    cpSync(join(app, '..', 'lib'), join(deployed, 'node_modules', '.store', 'lib'), {
      recursive: true,
      dereference: false,
    });
    link(join(deployed, 'node_modules', '@fx', 'lib'), '../.store/lib');
    linkBundle(deployed, readBuildRecord(deployed)!);
    for (const name of ['@fx/lib', 'zod']) {
      const path = join(deployed, 'dist', 'node_modules', name);
      expect(lstatSync(path).isSymbolicLink(), name).toBe(true);
    }
    expect(
      resolve(
        join(deployed, 'dist', 'node_modules', '@fx'),
        readlinkSync(join(deployed, 'dist', 'node_modules', '@fx', 'lib')),
      ),
    ).toBe(join(deployed, 'node_modules', '.store', 'lib'));
    const deployedSources = runNode(['--import', 'tsx', join(deployed, 'src', 'main.ts')]);
    expect(deployedSources.libFile).toBe(join(deployed, 'node_modules', '.store', 'lib', 'src', 'index.ts'));
    expect(runNode([join(deployed, 'dist', 'main.js')])).toEqual(deployedSources);
  });

  it('knows a fresh bundle from a stale one: changed or deleted sources, a missing link, another format', async () => {
    const { app, lib } = fixtureWorkspace();
    const target = buildTarget('app', app);
    expect(staleReason(target)).toBe('not built yet');
    await bundle(dirname(dirname(app)), target);
    expect(staleReason(target)).toBeNull();

    rmSync(join(app, 'dist', 'node_modules', 'zod'));
    expect(staleReason(target)).toBe('dist/node_modules/zod is missing');
    await bundle(dirname(dirname(app)), target);
    expect(staleReason(target)).toBeNull();

    // A source saved again (newer than the bundle), even with the same content.
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(lib, 'src', 'index.ts'), later, later);
    expect(staleReason(target)).toMatch(/packages\/lib\/src\/index\.ts changed$/);
    await bundle(dirname(dirname(app)), target);
    expect(staleReason(target)).toBeNull();

    rmSync(join(app, 'src', 'sub', 'note.ts'));
    expect(staleReason(target)).toMatch(/packages\/app\/src\/sub\/note\.ts is gone$/);

    const record = readBuildRecord(app)!;
    writeFileSync(join(app, 'dist', BUILD_RECORD), JSON.stringify({ ...record, format: record.format + 1 }));
    expect(staleReason(target)).toBe('built by another version of scripts/build.ts');
  });

  it('refuses what a bundle would change: an import.meta it cannot carry, two copies of one package', async () => {
    const first = fixtureWorkspace();
    write(join(first.lib, 'src', 'resolve.ts'), "export const where = import.meta.resolve('zod');\n");
    write(join(first.lib, 'src', 'index.ts'), "export { where as describeLib } from './resolve.ts';\n");
    await expect(bundle(first.ws, buildTarget('app', first.app))).rejects.toThrow(
      /packages\/lib\/src\/resolve\.ts:1: only import\.meta\.url, \.dirname and \.filename can be bundled/,
    );

    const second = fixtureWorkspace();
    const otherZod = join(second.ws, 'node_modules', '.store', 'zod');
    write(join(otherZod, 'package.json'), JSON.stringify({ name: 'zod', type: 'module', main: 'index.js' }));
    write(join(otherZod, 'index.js'), 'export const z = {};\n');
    link(join(second.app, 'node_modules', 'zod'), '../../../node_modules/.store/zod');
    write(
      join(second.app, 'src', 'main.ts'),
      "import { z } from 'zod';\nimport { describeLib } from '@fx/lib';\nconsole.log(z, describeLib());\n",
    );
    await expect(bundle(second.ws, buildTarget('app', second.app))).rejects.toThrow(
      /two copies of zod would load/,
    );
  });
});

describe('compiled workers', () => {
  it('a stale worker is built once, saying so on stderr; the supervisor then runs its bundle, which reports ready', async ({
    database,
    prefix,
  }) => {
    const billing = buildTargets(root).find((t) => t.name === 'billing')!;
    ensureBuilt(root, [billing], () => {});
    // As if a source had been saved after the build: the record's stamp of it no longer matches.
    const record = readBuildRecord(billing.packageDir)!;
    const handler = Object.keys(record.inputs).find((f) => f.endsWith('src/handler.ts'))!;
    const stale: BuildRecord = { ...record, inputs: { ...record.inputs, [handler]: [1, 1] } };
    writeFileSync(join(billing.packageDir, 'dist', BUILD_RECORD), JSON.stringify(stale));
    expect(staleReason(billing)).toMatch(/services\/billing\/src\/handler\.ts changed$/);

    const said: string[] = [];
    ensureBuilt(root, [billing], (line) => said.push(line));
    expect(said[0]).toMatch(
      /^tuneline: building billing into <package>\/dist \(billing: .*handler\.ts changed\)$/,
    );
    expect(said[1]).toMatch(/^tuneline: built billing in [\d.]+ s$/);
    expect(staleReason(billing)).toBeNull();
    const again: string[] = [];
    ensureBuilt(root, [billing], (line) => again.push(line));
    expect(again).toEqual([]);

    let output = '';
    const supervisor = superviseServices({
      root,
      manifests: readServiceManifests(root).filter((m) => m.service === 'billing'),
      env: { ...process.env, DATABASE_URL: database.url, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix },
      restart: false,
      onOutput: (_service, chunk) => {
        output += chunk;
      },
    });
    try {
      const [proc] = supervisor.processes;
      // The bundle itself, no TypeScript loader.
      expect(proc!.child.spawnargs.slice(1)).toEqual([billing.outfile]);
      const port = await waitFor(
        async () => {
          if (proc!.child.exitCode !== null) throw new Error(`billing exited: ${output}`);
          const m = /"healthPort":(\d+)/.exec(output);
          return m && output.includes('service started') ? Number(m[1]) : undefined;
        },
        60_000,
        'the compiled billing worker to start',
      );
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    } finally {
      await supervisor.stop(10_000);
    }
    expect(supervisor.exits).toEqual([{ service: 'billing', instance: 0, code: 0, signal: null }]);
  }, 120_000);
});
