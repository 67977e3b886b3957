import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs the six workers as separate processes, the way ops run them: one process per service (or
 * several with `scale`), each with its own health port, restarted when it dies unexpectedly.
 */

export interface ServiceManifest {
  service: string;
  /** The queue this service consumes, from `tuneline.consumes` in its package.json. */
  queue: string;
  entry: string;
}

/** Reads every services/<name>/package.json: the service's queue and entry point. */
export function readServiceManifests(root: string): ServiceManifest[] {
  const dir = join(root, 'services');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const pkg = JSON.parse(readFileSync(join(dir, d.name, 'package.json'), 'utf8')) as {
        tuneline?: { consumes?: string };
      };
      return {
        service: d.name,
        queue: pkg.tuneline?.consumes ?? '',
        entry: join(dir, d.name, 'src', 'main.ts'),
      };
    });
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
}

export interface SuperviseOptions {
  root: string;
  manifests: ServiceManifest[];
  env: NodeJS.ProcessEnv;
  /** Instances per service (default 1). */
  scale?: Record<string, number>;
  /** Health ports are basePort, basePort+1, … (0: every process picks a free port). */
  basePort?: number;
  /** Where each process's output goes (default: inherited). */
  onOutput?: (service: string, chunk: string) => void;
  restart?: boolean;
}

export function superviseServices(opts: SuperviseOptions): Supervisor {
  let stopping = false;
  const processes: ServiceProcess[] = [];
  let port = opts.basePort ?? 0;

  const launch = (
    m: ServiceManifest,
    instance: number,
    healthPort: number,
    restarts: number,
  ): ServiceProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', m.entry], {
      cwd: opts.root,
      env: { ...opts.env, HEALTH_PORT: String(healthPort) },
      stdio: opts.onOutput ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    child.stdout?.on('data', (d: Buffer) => opts.onOutput?.(m.service, d.toString()));
    child.stderr?.on('data', (d: Buffer) => opts.onOutput?.(m.service, d.toString()));
    const proc: ServiceProcess = { service: m.service, instance, healthPort, child, restarts };
    child.once('exit', (code, signal) => {
      if (stopping || opts.restart === false) return;
      // Exit code 78 is a configuration error: restarting cannot fix it.
      if (code === 78) return;
      opts.onOutput?.(
        m.service,
        `supervisor: ${m.service}#${instance} exited (${code ?? signal}); restarting\n`,
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

  return {
    processes,
    kill(service, instance = 0) {
      processes.find((p) => p.service === service && p.instance === instance)?.child.kill('SIGKILL');
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
