import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildTargets, readServiceManifests } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';
import {
  allOf,
  buildStageRuns,
  deployLoop,
  effective,
  execForm,
  healthcheckCommand,
  moduleImports,
  parseDockerfile,
  readCompose,
  root,
  stageChain,
} from './files.ts';

const stages = parseDockerfile(join(root, 'Dockerfile'));
const compose = readCompose();
const workers = readServiceManifests(root).map((m) => m.service);

/** The /out/<pkg> a target copies from the build stage. */
function deployedPackage(target: string): string | undefined {
  const copies = allOf(stages, target, 'COPY').filter((c) => c.args.startsWith('--from=build '));
  if (copies.length !== 1) return undefined;
  return /^--from=build \/out\/([\w-]+) \/app$/.exec(copies[0]!.args)?.[1];
}

describe('Dockerfile', () => {
  const built = Object.entries(compose.services).filter(([, def]) => def.build);

  it('has a target for every service compose builds, each running node as the child of tini, as user node', () => {
    expect(built.map(([name]) => name).sort()).toEqual([...workers, 'api', 'migrate', 'simulator'].sort());
    for (const [, def] of built) {
      const target = def.build!.target!;
      expect(stageChain(stages, target).length, `stage ${target}`).toBeGreaterThan(0);
      expect(effective(stages, target, 'USER')?.args, target).toBe('node');
      expect(execForm(effective(stages, target, 'ENTRYPOINT')?.args ?? ''), target).toEqual([
        '/usr/bin/tini',
        '--',
      ]);
      // Exec form and `node` first: no shell between tini and node, so node gets the SIGTERM.
      const command = def.command ?? execForm(effective(stages, target, 'CMD')?.args ?? '');
      expect(command?.[0], target).toBe('node');
    }
    const installs = allOf(stages, 'api', 'RUN').map((r) => r.args);
    expect(installs.some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
  });

  it('builds each image from one `pnpm deploy --prod` of its own package', () => {
    const loop = deployLoop(stages);
    expect(loop.command).toMatch(/^pnpm .*--filter "@tuneline\/\$pkg" deploy --prod "\/out\/\$pkg"$/);
    // pnpm 10's --legacy deploy also installs the workspace root's dependencies into every image.
    expect(loop.command).not.toContain('--legacy');
    const expected: Record<string, string> = { api: 'api', migrate: 'cli', simulator: 'cli' };
    for (const service of workers) expected[service] = service;
    for (const [target, pkg] of Object.entries(expected)) {
      expect(deployedPackage(target), target).toBe(pkg);
      expect(loop.packages, target).toContain(pkg);
    }
    const pnpm = allOf(stages, 'build', 'RUN').find((r) => r.args.startsWith('npm install -g pnpm@'));
    const pinned = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }
    ).packageManager;
    expect(pnpm?.args).toBe(`npm install -g ${pinned}`);
  });

  it('compiles every process before deploying it, and the images run the compiled JavaScript', () => {
    const runs = buildStageRuns(stages);
    const at = (pattern: RegExp) => runs.findIndex((r) => pattern.test(r));
    // The build needs the development dependencies (esbuild, tsx): fetched, then installed without scripts.
    expect(runs[at(/^pnpm fetch/)]).toBe('pnpm fetch');
    expect(at(/^pnpm install --offline --frozen-lockfile --ignore-scripts$/)).toBeGreaterThan(
      at(/^pnpm fetch/),
    );
    const build = at(/^node --import tsx scripts\/build\.ts$/);
    expect(build).toBeGreaterThan(at(/^pnpm install /));
    expect(at(/ deploy /)).toBeGreaterThan(build);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // `npm run build` is the same script, after bootstrap.mjs has installed the dependencies.
    expect(pkg.scripts.build).toBe('node scripts/bootstrap.mjs build');
    // Every deployed package has a bundle, linked to the deployed tree's node_modules after the deploy.
    const loop = deployLoop(stages);
    const targets = buildTargets(root).map((t) => relative(root, t.packageDir));
    for (const p of loop.packages)
      expect(targets, p).toContain(p === 'api' || p === 'cli' ? `packages/${p}` : `services/${p}`);
    expect(loop.after).toEqual(['node --import tsx scripts/build.ts --link "/out/$pkg"']);
    for (const target of [...workers, 'api']) {
      expect(execForm(effective(stages, target, 'CMD')?.args ?? ''), target).toEqual([
        'node',
        'dist/main.js',
      ]);
    }
    // The CLI's bin runs dist/main.js when there is no workspace around it.
    expect(execForm(effective(stages, 'migrate', 'CMD')?.args ?? '')?.slice(0, 2)).toEqual([
      'node',
      'bin/tuneline.mjs',
    ]);
  });

  it('checks health on /readyz for the workers and the API, and not for the one-shot migration', () => {
    for (const target of workers) {
      expect(healthcheckCommand(stages, target)?.join(' '), target).toMatch(
        /^node -e .*process\.env\.HEALTH_PORT.*\/readyz/,
      );
      expect(
        allOf(stages, target, 'ENV').some((e) => e.args === 'HEALTH_PORT=9400'),
        target,
      ).toBe(true);
    }
    expect(healthcheckCommand(stages, 'api')?.join(' ')).toMatch(/process\.env\.API_PORT.*\/readyz/);
    expect(healthcheckCommand(stages, 'simulator')?.join(' ')).toContain('http://127.0.0.1:4010/');
    expect(effective(stages, 'migrate', 'HEALTHCHECK')).toBeUndefined();
  });

  it('keeps node_modules and local state out of the build context', () => {
    const ignore = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toContain('**/node_modules');
    expect(ignore).toContain('**/.tuneline');
    // The build stage compiles its own bundles; it needs the build script and the TypeScript settings.
    expect(ignore).toContain('**/dist');
    expect(ignore).toContain('!scripts/build.ts');
    expect(ignore).toContain('!tsconfig.json');
  });
});

describe('deployed packages', () => {
  const workspace = new Map<
    string,
    { dir: string; dependencies: Record<string, string>; devDependencies: Record<string, string> }
  >();
  for (const group of ['packages', 'services']) {
    for (const name of readdirSync(join(root, group))) {
      const dir = join(root, group, name);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      workspace.set(pkg.name, {
        dir,
        dependencies: pkg.dependencies ?? {},
        devDependencies: pkg.devDependencies ?? {},
      });
    }
  }

  it('declare, each in its own dependencies, every package their code loads (pnpm deploy --prod installs nothing else)', () => {
    const seen = new Set<string>();
    const queue = deployLoop(stages).packages.map((p) => `@tuneline/${p}`);
    while (queue.length) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const pkg = workspace.get(name);
      expect(pkg, name).toBeDefined();
      // The one exception: the CLI's bin loads tsx only in a checkout (a devDependency there); deployed, it
      // runs dist/main.js (pnpm-deploy.test.ts runs the deployed CLI, which has no tsx).
      const checkoutOnly = (s: string) =>
        name === '@tuneline/cli' && s === 'tsx' && s in pkg!.devDependencies;
      const undeclared = [...moduleImports(pkg!.dir)].filter(
        (s) => s !== name && !(s in pkg!.dependencies) && !checkoutOnly(s),
      );
      expect(undeclared, `${name} imports without declaring`).toEqual([]);
      queue.push(...Object.keys(pkg!.dependencies).filter((d) => workspace.has(d)));
    }
  });

  it('leave the build tools out: the images run compiled JavaScript, so neither tsx nor esbuild is a production dependency', () => {
    for (const [name, pkg] of workspace) {
      expect(pkg.dependencies.tsx, name).toBeUndefined();
      expect(pkg.dependencies.esbuild, name).toBeUndefined();
    }
  });
});
