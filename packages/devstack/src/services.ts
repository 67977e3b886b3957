import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { queues } from '@tuneline/contracts';
import { buildTarget, compiledEntry, ensureBuilt } from './build.ts';

/**
 * Runs the six workers as separate processes, the way ops run them: one process per service (or
 * several with `scale`), each with its own health port, restarted when it dies unexpectedly. Each runs
 * its compiled bundle (services/<name>/dist/main.js, built first when missing or stale), as the images
 * do; `sources: true` runs src/main.ts through tsx instead.
 */

export interface ServiceManifest {
  service: string;
  /** The queues the catalogue gives this service (each queue names its one consumer). */
  queues: string[];
  /** services/<service>/src/main.ts */
  entry: string;
}

/**
 * The Node arguments that start an entry `<package>/src/main.ts`: its compiled bundle (dist/main.js),
 * or with `sources` the TypeScript through tsx (development, and the baseline of the start-up bench).
 */
export function entryArgs(entry: string, opts: { sources?: boolean } = {}): string[] {
  return opts.sources ? ['--import', 'tsx', entry] : [compiledEntry(entry)];
}

/** The service folders and the queue catalogue disagree: nothing can start as it stands. */
export class ServiceCatalogueError extends Error {
  override name = 'ServiceCatalogueError';
}

/** What `readServiceManifests` reads of the catalogue: each queue's consumer. */
export type ConsumerCatalogue = Readonly<Record<string, { consumer: string }>>;

/**
 * The services to run, from the queue catalogue: one per consumer it names, with that service's
 * queues, and the entry point from its folder. Throws a ServiceCatalogueError, naming each problem,
 * when a consumer has no `services/<name>/src/main.ts` or a folder under services/ consumes nothing.
 */
export function readServiceManifests(root: string, catalogue: ConsumerCatalogue = queues): ServiceManifest[] {
  const dir = join(root, 'services');
  const manifests = new Map<string, ServiceManifest>();
  for (const [queue, { consumer }] of Object.entries(catalogue)) {
    const m = manifests.get(consumer) ?? {
      service: consumer,
      queues: [],
      entry: join(dir, consumer, 'src', 'main.ts'),
    };
    m.queues.push(queue);
    manifests.set(consumer, m);
  }
  const problems: string[] = [];
  for (const m of manifests.values()) {
    if (!existsSync(m.entry)) {
      problems.push(
        `"${m.service}" consumes ${m.queues.map((q) => `"${q}"`).join(', ')} but has no ${relative(root, m.entry)}`,
      );
    }
  }
  const folders = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory());
  for (const folder of folders) {
    if (!manifests.has(folder.name)) {
      problems.push(
        `services/${folder.name} consumes no queue (no queue of the catalogue names it its consumer)`,
      );
    }
  }
  if (problems.length) {
    throw new ServiceCatalogueError(
      `the service folders and the queue catalogue (packages/contracts/src/queues.ts) disagree: ${problems.join('; ')}`,
    );
  }
  return [...manifests.values()];
}

export interface ServiceProcess {
  service: string;
  instance: number;
  healthPort: number;
  child: ChildProcess;
  restarts: number;
}

export interface Supervisor {
  processes: ServiceProcess[];
  /** SIGTERM to every process; resolves when all have exited (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL one process (chaos); the supervisor restarts it. */
  kill(service: string, instance?: number): void;
  /**
   * SIGTERM one process and wait for it to exit (a rolling restart): resolves with its exit code and
   * how long it took. The supervisor starts it again afterwards, as it does after any exit.
   */
  terminate(
    service: string,
    instance?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Exits seen so far, newest last (restarts included). */
  exits: { service: string; instance: number; code: number | null; signal: NodeJS.Signals | null }[];
}

export interface SuperviseOptions {
  root: string;
  manifests: ServiceManifest[];
  env: NodeJS.ProcessEnv;
  /** Instances per service (default 1). */
  scale?: Record<string, number>;
  /** Health ports are basePort, basePort+1, … (0: every process picks a free port). */
  basePort?: number;
  /** Extra Node.js flags for every process (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Extra variables for one instance; a variable set to undefined is removed. */
  instanceEnv?: (service: string, instance: number) => NodeJS.ProcessEnv;
  /** Where each process's output goes (default: inherited). */
  onOutput?: (service: string, chunk: string, instance: number) => void;
  restart?: boolean;
  /** Run src/main.ts through tsx instead of the compiled bundle (which is built first when stale). */
  sources?: boolean;
}

export function superviseServices(opts: SuperviseOptions): Supervisor {
  let stopping = false;
  const processes: ServiceProcess[] = [];
  const exits: Supervisor['exits'] = [];
  let port = opts.basePort ?? 0;
  if (!opts.sources) {
    ensureBuilt(
      opts.root,
      opts.manifests.map((m) => buildTarget(m.service, dirname(dirname(m.entry)))),
    );
  }

  const launch = (
    m: ServiceManifest,
    instance: number,
    healthPort: number,
    restarts: number,
  ): ServiceProcess => {
    const env: NodeJS.ProcessEnv = {
      ...opts.env,
      HEALTH_PORT: String(healthPort),
      ...opts.instanceEnv?.(m.service, instance),
    };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...entryArgs(m.entry, opts)], {
      cwd: opts.root,
      env,
      stdio: opts.onOutput ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    child.stdout?.on('data', (d: Buffer) => opts.onOutput?.(m.service, d.toString(), instance));
    child.stderr?.on('data', (d: Buffer) => opts.onOutput?.(m.service, d.toString(), instance));
    const proc: ServiceProcess = { service: m.service, instance, healthPort, child, restarts };
    child.once('exit', (code, signal) => {
      exits.push({ service: m.service, instance, code, signal });
      if (stopping || opts.restart === false) return;
      // Exit code 78 is a configuration error: restarting cannot fix it.
      if (code === 78) return;
      opts.onOutput?.(
        m.service,
        `supervisor: ${m.service}#${instance} exited (${code ?? signal}); restarting\n`,
        instance,
      );
      setTimeout(() => {
        if (stopping) return;
        const next = launch(m, instance, healthPort, restarts + 1);
        processes[processes.indexOf(proc)] = next;
      }, 500);
    });
    return proc;
  };

  for (const m of opts.manifests) {
    const count = opts.scale?.[m.service] ?? 1;
    for (let i = 0; i < count; i++) {
      processes.push(launch(m, i, port, 0));
      if (port) port++;
    }
  }

  const find = (service: string, instance: number) =>
    processes.find((p) => p.service === service && p.instance === instance);

  return {
    processes,
    exits,
    kill(service, instance = 0) {
      find(service, instance)?.child.kill('SIGKILL');
    },
    terminate(service, instance = 0) {
      const proc = find(service, instance);
      if (!proc) return Promise.reject(new Error(`no process ${service}#${instance}`));
      const { child } = proc;
      const started = Date.now();
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
          return;
        }
        child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - started }));
        child.kill('SIGTERM');
      });
    },
    async stop(timeoutMs = 30_000) {
      stopping = true;
      await Promise.all(
        processes.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
              const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
              p.child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              p.child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
