import { readServiceManifests } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';
import { readCompose, root } from './files.ts';

const seconds = (duration: string | undefined) => Number(/^(\d+)s$/.exec(duration ?? '')?.[1] ?? Number.NaN);

describe('docker-compose.yml', () => {
  const compose = readCompose();
  const workers = readServiceManifests(root).map((m) => m.service);

  it('runs every worker as its own scalable service, built from its own target, that waits for the migrations', () => {
    expect(workers).toHaveLength(7);
    const images = new Set<string>();
    for (const service of workers) {
      const def = compose.services[service];
      expect(def, `compose service for ${service}`).toBeDefined();
      expect(def?.build?.target, service).toBe(service);
      expect(def?.image, service).toMatch(new RegExp(`^tuneline/${service}:`));
      images.add(def!.image!);
      // No fixed host ports or names: `docker compose up --scale <worker>=3` must work.
      expect(def?.ports, service).toBeUndefined();
      expect(def?.container_name, service).toBeUndefined();
      expect(def?.depends_on?.migrate?.condition, service).toBe('service_completed_successfully');
      expect(def?.depends_on?.redis?.condition, service).toBe('service_healthy');
      expect(def?.environment?.REDIS_URL, service).toBe('redis://redis:6379');
      expect(def?.environment?.DATABASE_URL, service).toMatch(
        /^postgres:\/\/tuneline:.*@postgres:5432\/tuneline$/,
      );
      expect(def?.environment?.HEALTH_PORT, service).toBe('9400');
      // Docker's SIGKILL must come after the worker's own drain limit (SHUTDOWN_TIMEOUT_MS, 25 s by default).
      expect(seconds(def?.stop_grace_period), service).toBeGreaterThan(25);
    }
    expect(images.size).toBe(workers.length);
  });

  it('runs the API as the entry point: published port, health check on /readyz, after the migrations', () => {
    const api = compose.services.api;
    expect(api?.build?.target).toBe('api');
    expect(api?.container_name).toBeUndefined();
    expect(api?.environment?.API_PORT).toBe('8080');
    expect(api?.ports).toEqual([expect.stringMatching(/:8080$/)]);
    expect(api?.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:8080/readyz');
    expect(api?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(api?.environment?.DATABASE_URL).toBe(compose.services.trainer?.environment?.DATABASE_URL);
    expect(api?.environment?.QUEUE_PREFIX).toBe(compose.services.trainer?.environment?.QUEUE_PREFIX);
  });

  it('publishes no port but the API and the loopback-only database ports, and names no container', () => {
    for (const [name, def] of Object.entries(compose.services)) {
      expect(def.container_name, name).toBeUndefined();
      if (name === 'api' || !def.ports) continue;
      expect(['postgres', 'redis'], `${name} publishes ${def.ports}`).toContain(name);
      for (const port of def.ports) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('keeps Postgres and Redis data in volumes, Redis with AOF and no eviction of queue keys', () => {
    const command = compose.services.redis?.command?.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(compose.services.redis?.volumes).toContain('redisdata:/data');
    expect(compose.services.postgres?.volumes).toContain('pgdata:/var/lib/postgresql/data');
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['pgdata', 'redisdata']));
  });

  it('runs the migrations once, after Postgres is healthy', () => {
    const migrate = compose.services.migrate;
    expect(migrate?.build?.target).toBe('migrate');
    expect(migrate?.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(migrate?.restart).toBe('no');
  });

  it('shares the dataset files between the builder and the uploader, and keeps the notifier mail in a volume', () => {
    const storage = (service: string) =>
      compose.services[service]?.volumes?.find((v) => v.endsWith(':/data/storage'));
    expect(storage('dataset-builder')).toBeDefined();
    expect(storage('dataset-builder')).toBe(storage('uploader'));
    expect(compose.services.notifier?.volumes).toContain('mail:/data/mail');
  });

  it('offers the simulator only in the demo profile, where the workers and the API look for it', () => {
    const simulator = compose.services.simulator;
    expect(simulator?.profiles).toEqual(['demo']);
    const command = simulator?.command ?? [];
    expect(command.slice(0, 3)).toEqual(['node', 'bin/tuneline.mjs', 'sim']);
    expect(command[command.indexOf('--host') + 1]).toBe('0.0.0.0');
    const port = command[command.indexOf('--port') + 1];
    for (const name of [...workers, 'api']) {
      expect(compose.services[name]?.profiles, name).toBeUndefined();
      expect(compose.services[name]?.environment?.SIMULATOR_URL, name).toBe(`http://simulator:${port}/v1`);
    }
  });
});
