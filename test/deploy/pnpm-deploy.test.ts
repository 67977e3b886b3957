import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type CapturedProcess, spawnCaptured } from '../support/process.ts';
import {
  buildStageRuns,
  deployLoop,
  effective,
  execForm,
  healthcheckCommand,
  parseDockerfile,
  root,
} from './files.ts';

// What no Docker engine here can do: run the Dockerfile's own build and `pnpm deploy` commands (taken from the
// file) for a worker, the API and the CLI, then start each tree the way its image's CMD does (its compiled
// dist/main.js), from a copy outside the workspace, as if it were /app in the image.
const stages = parseDockerfile(join(root, 'Dockerfile'));
const packageManager = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }
).packageManager;

/** Symlinks under `dir` that point outside it (COPY into the image would leave them dangling). */
function escapingLinks(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) {
        const target = resolve(dirname(path), readlinkSync(path));
        if (!target.startsWith(dir + sep)) out.push(`${path} -> ${target}`);
      } else if (stat.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out;
}

/** Starts a deployed tree with its image's CMD and only the given environment. */
function startImageCmd(dir: string, target: string, env: Record<string, string>): CapturedProcess {
  const cmd = execForm(effective(stages, target, 'CMD')?.args ?? '');
  if (cmd?.[0] !== 'node') throw new Error(`${target}: CMD is not ["node", ...]`);
  return spawnCaptured(cmd.slice(1), {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, NODE_ENV: 'production', ...env },
  });
}

/** Runs a target's HEALTHCHECK command the way Docker does (in the container's environment); its exit code. */
function healthcheck(target: string, env: Record<string, string>): number | null {
  const cmd = healthcheckCommand(stages, target);
  if (cmd?.[0] !== 'node') throw new Error(`${target}: HEALTHCHECK is not ["node", ...]`);
  return spawnSync(process.execPath, cmd.slice(1), {
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 10_000,
  }).status;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('pnpm deploy, as the Dockerfile runs it', () => {
  const out = mkdtempSync(join(tmpdir(), 'tuneline-deploy-'));
  const deployed = (pkg: string) => join(out, pkg);
  let tdb: TestDatabase;
  const running: ChildProcess[] = [];

  test.beforeAll(async ({ database }) => {
    tdb = database;
    // The image's `pnpm` is the pinned one installed with npm; here it is run through npx.
    const local = (command: string) =>
      command.replace(/^pnpm /, `npx --yes ${packageManager} `).replaceAll('/out/', `${out}/`);
    const sh = (script: string) =>
      execFileSync('sh', ['-euc', script], { cwd: root, env: { ...process.env, CI: 'true' }, stdio: 'pipe' });
    // The build stage's own build command (in this checkout it only rebuilds what is stale).
    const build = buildStageRuns(stages).find((r) => r.includes('scripts/build.ts') && !r.includes('--link'));
    if (!build) throw new Error('no scripts/build.ts in the build stage');
    sh(local(build));
    const { command, after } = deployLoop(stages);
    sh(`for pkg in billing api cli; do ${[command, ...after].map(local).join('; ')}; done`);
  }, 240_000);

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    rmSync(out, { recursive: true, force: true });
  });

  it('gives each package a self-contained tree with only its own dependencies at the top', () => {
    for (const pkg of ['billing', 'api', 'cli']) {
      expect(escapingLinks(deployed(pkg)), pkg).toEqual([]);
      const manifest = JSON.parse(readFileSync(join(deployed(pkg), 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      const top = readdirSync(join(deployed(pkg), 'node_modules'))
        .filter((e) => !e.startsWith('.'))
        .flatMap((e) =>
          e.startsWith('@')
            ? readdirSync(join(deployed(pkg), 'node_modules', e)).map((s) => `${e}/${s}`)
            : [e],
        );
      expect(top.sort(), pkg).toEqual(Object.keys(manifest.dependencies).sort());
    }
    // The workspace root's own dependency (the CLI) must not ride along into a worker's image.
    expect(readdirSync(join(deployed('billing'), 'node_modules', '@tuneline'))).not.toContain('cli');
  });

  it('holds the compiled process and neither tsx nor esbuild (nothing compiles at run time)', () => {
    for (const pkg of ['billing', 'api', 'cli']) {
      expect(existsSync(join(deployed(pkg), 'dist', 'main.js')), pkg).toBe(true);
      const installed = readdirSync(join(deployed(pkg), 'node_modules', '.pnpm'));
      expect(
        installed.filter((d) => /^(tsx|esbuild|@esbuild\+)/.test(d)),
        pkg,
      ).toEqual([]);
    }
  });

  it('starts each image command: every module loads, and missing settings are named, exit 78', async () => {
    const billing = startImageCmd(deployed('billing'), 'billing', {});
    const migrate = startImageCmd(deployed('cli'), 'migrate', {});
    const api = startImageCmd(deployed('api'), 'api', {});
    expect((await billing.exit).code).toBe(78);
    expect(billing.output()).toContain('Invalid configuration: DATABASE_URL');
    expect((await migrate.exit).code).toBe(78);
    expect(migrate.output()).toContain('Invalid configuration: DATABASE_URL');
    expect((await api.exit).code).toBe(78);
    expect(api.output()).toContain('Invalid configuration: DATABASE_URL');
  }, 60_000);

  it('runs a deployed worker against Postgres and Redis: ready, then a clean exit on SIGTERM', async () => {
    const worker = startImageCmd(deployed('billing'), 'billing', {
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: testPrefix(),
      HEALTH_PORT: '0',
    });
    running.push(worker.child);
    const port = await waitFor(
      async () => {
        if (worker.child.exitCode !== null) throw new Error(`exited early:\n${worker.output()}`);
        const m = /"healthPort":(\d+)/.exec(worker.output());
        return m && worker.output().includes('service started') ? Number(m[1]) : undefined;
      },
      30_000,
      'the deployed billing worker to start',
    );
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    // The image sets HEALTH_PORT=9400; here the worker picked a free port.
    expect(healthcheck('billing', { HEALTH_PORT: String(port) })).toBe(0);
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(0);
    expect(healthcheck('billing', { HEALTH_PORT: String(port) })).toBe(1);
  }, 60_000);

  it('runs the deployed API: its health check passes, and it exits 0 on SIGTERM', async () => {
    const env = { DATABASE_URL: tdb.url, REDIS_URL: redisUrl(), QUEUE_PREFIX: testPrefix(), API_PORT: '' };
    env.API_PORT = String(await freePort());
    const api = startImageCmd(deployed('api'), 'api', env);
    running.push(api.child);
    await waitFor(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`exited early:\n${api.output()}`);
        return healthcheck('api', env) === 0;
      },
      30_000,
      'the deployed API to pass its health check',
    );
    // The hub's files are found from the bundle, in the deployed tree.
    const hub = await fetch(`http://127.0.0.1:${env.API_PORT}/hub`);
    expect(hub.status).toBe(200);
    expect(await hub.text()).toContain('<html');
    api.child.kill('SIGTERM');
    expect((await api.exit).code).toBe(0);
  }, 60_000);

  it('runs the deployed CLI: migrate, and the API it carries finds its hub', async () => {
    const env = { DATABASE_URL: tdb.url, REDIS_URL: redisUrl(), QUEUE_PREFIX: testPrefix() };
    const migrate = startImageCmd(deployed('cli'), 'migrate', env);
    expect((await migrate.exit).code, migrate.output()).toBe(0);
    const port = await freePort();
    const api = spawnCaptured(['bin/tuneline.mjs', 'api', '--port', String(port)], {
      cwd: deployed('cli'),
      env: { PATH: process.env.PATH ?? '', HOME: deployed('cli'), NODE_ENV: 'production', ...env },
    });
    running.push(api.child);
    const hub = await waitFor(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`exited early:\n${api.output()}`);
        return fetch(`http://127.0.0.1:${port}/hub`).catch(() => undefined);
      },
      30_000,
      'the deployed CLI to serve the API',
    );
    expect(hub.status).toBe(200);
    expect(await hub.text()).toContain('<html');
    api.child.kill('SIGTERM');
    expect((await api.exit).code).toBe(0);
  }, 60_000);
});
