import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readServiceManifests } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';
import {
  allOf,
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
    const runsTsx = (target: string) =>
      execForm(effective(stages, target, 'CMD')?.args ?? '')?.join(' ') === 'node --import tsx src/main.ts';
    for (const target of [...workers, 'api']) expect(runsTsx(target), target).toBe(true);
    const pnpm = allOf(stages, 'build', 'RUN').find((r) => r.args.startsWith('npm install -g pnpm@'));
    const pinned = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }
    ).packageManager;
    expect(pnpm?.args).toBe(`npm install -g ${pinned}`);
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
  });
});

describe('deployed packages', () => {
  const workspace = new Map<string, { dir: string; dependencies: Record<string, string> }>();
  for (const group of ['packages', 'services']) {
    for (const name of readdirSync(join(root, group))) {
      const dir = join(root, group, name);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
      };
      workspace.set(pkg.name, { dir, dependencies: pkg.dependencies ?? {} });
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
      const undeclared = [...moduleImports(pkg!.dir)].filter((s) => s !== name && !(s in pkg!.dependencies));
      expect(undeclared, `${name} imports without declaring`).toEqual([]);
      queue.push(...Object.keys(pkg!.dependencies).filter((d) => workspace.has(d)));
    }
    // The images run TypeScript through tsx: it must be a production dependency of what they start.
    for (const name of ['api', 'cli', ...workers]) {
      expect(workspace.get(`@tuneline/${name}`)?.dependencies.tsx, name).toBeDefined();
    }
  });
});
