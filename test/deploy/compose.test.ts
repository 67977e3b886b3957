import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readServiceManifests } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = join(import.meta.dirname, '../..');

interface ComposeService {
  command?: string[];
  ports?: unknown[];
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  environment?: Record<string, string>;
}

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };

  it('runs every worker as its own scalable service that waits for the migrations', () => {
    for (const { service } of readServiceManifests(root)) {
      const def = compose.services[service];
      expect(def, `compose service for ${service}`).toBeDefined();
      expect(def?.command).toEqual(['service', service]);
      // No fixed host ports or names: `docker compose up --scale <worker>=3` must work.
      expect(def?.ports).toBeUndefined();
      expect(def?.container_name).toBeUndefined();
      expect(def?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
      expect(def?.environment?.REDIS_URL).toBe('redis://redis:6379');
    }
  });

  it('keeps Redis data (AOF) and never evicts queue keys', () => {
    const command = compose.services.redis?.command?.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
  });

  it('offers the simulator only in the demo profile', () => {
    expect(compose.services.simulator?.profiles).toEqual(['demo']);
    expect(compose.services.migrate?.command).toEqual(['migrate']);
  });
});
