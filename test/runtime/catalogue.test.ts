import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queues, SERVICES } from '@tuneline/contracts';
import { readServiceManifests, ServiceCatalogueError } from '@tuneline/devstack';
import { assertStagesMatchCatalogue, ConfigError, stageCatalogueProblems } from '@tuneline/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCaptured } from '../support/process.ts';

const root = join(import.meta.dirname, '../..');

describe("a service's stages against the queue catalogue", () => {
  it('accept exactly the queues the catalogue gives the service', () => {
    for (const service of SERVICES) {
      const own = Object.values(queues)
        .filter((q) => q.consumer === service)
        .map((q) => q.name);
      expect(stageCatalogueProblems(service, own), service).toEqual([]);
    }
  });

  it('name a missing queue, a queue declared twice, and one that belongs to another service', () => {
    expect(stageCatalogueProblems('trainer', [])).toEqual([
      'the catalogue gives it "finetune-create", but it declares no stage for it',
    ]);
    expect(stageCatalogueProblems('trainer', ['finetune-create', 'finetune-create'])).toEqual([
      'it declares a stage for "finetune-create" more than once',
    ]);
    expect(stageCatalogueProblems('trainer', ['finetune-create', 'billing-settle'])).toEqual([
      'it declares a stage for "billing-settle", which the catalogue gives to "billing"',
    ]);
    expect(stageCatalogueProblems('promoter', ['promote'])).toEqual([
      'the catalogue names it the consumer of no queue',
      'it declares a stage for "promote", a queue the catalogue does not have',
    ]);
    expect(() => assertStagesMatchCatalogue('billing', [])).toThrow(ConfigError);
    expect(() => assertStagesMatchCatalogue('billing', [])).toThrow(
      'service "billing" does not match the queue catalogue (packages/contracts/src/queues.ts): the catalogue gives it "billing-settle", but it declares no stage for it',
    );
  });

  // The whole process, as ops would see it: no settings needed, exit 78 (restarting cannot fix it).
  it.each([
    ['its queue missing', '', 'the catalogue gives it "notify-send", but it declares no stage for it'],
    [
      'its queue declared twice',
      'notify-send,notify-send',
      'it declares a stage for "notify-send" more than once',
    ],
  ])(
    'a service with %s refuses to boot through runService, exit 78',
    async (_, stages, problem) => {
      const proc = spawnCaptured(['--import', 'tsx', 'test/fixtures/catalogue-service.ts'], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', SERVICE: 'notifier', STAGES: stages },
      });
      const { code } = await proc.exit;
      expect(code).toBe(78);
      expect(proc.output()).toContain(`notifier: service "notifier" does not match the queue catalogue`);
      expect(proc.output()).toContain(problem);
      expect(proc.output()).not.toContain('Invalid configuration');
    },
    60_000,
  );
});

describe('the service list `tuneline workers` starts', () => {
  let scratch: string | undefined;
  afterEach(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  });

  /** A root with a services/<name>/src/main.ts for each name. */
  function layout(...services: string[]): string {
    scratch = mkdtempSync(join(tmpdir(), 'tuneline-services-'));
    for (const s of services) {
      mkdirSync(join(scratch, 'services', s, 'src'), { recursive: true });
      writeFileSync(join(scratch, 'services', s, 'src', 'main.ts'), '');
    }
    return scratch;
  }

  it('is the catalogue: each consumer with its queues and the entry point in its folder', () => {
    const manifests = readServiceManifests(root);
    expect(manifests.map((m) => m.service)).toEqual([...SERVICES]);
    for (const m of manifests) {
      expect(m.queues.map((q) => queues[q as keyof typeof queues].consumer)).toEqual(
        m.queues.map(() => m.service),
      );
      expect(m.entry).toBe(join(root, 'services', m.service, 'src', 'main.ts'));
    }
    expect(manifests.flatMap((m) => m.queues).sort()).toEqual(Object.keys(queues).sort());
  });

  it('refuses a consumer without a service folder, and a folder that consumes nothing', () => {
    const withoutBilling = layout(...SERVICES.filter((s) => s !== 'billing'));
    expect(() => readServiceManifests(withoutBilling)).toThrow(ServiceCatalogueError);
    expect(() => readServiceManifests(withoutBilling)).toThrow(
      '"billing" consumes "billing-settle", "inference-usage" but has no services/billing/src/main.ts',
    );
    rmSync(withoutBilling, { recursive: true, force: true });
    const stray = layout(...SERVICES, 'promoter');
    expect(() => readServiceManifests(stray)).toThrow(
      'services/promoter consumes no queue (no queue of the catalogue names it its consumer)',
    );
  });

  it('takes a new stage from one catalogue entry and one service folder', () => {
    const next = layout(...SERVICES, 'promoter');
    const catalogue = { ...queues, promote: { consumer: 'promoter' } };
    const manifests = readServiceManifests(next, catalogue);
    expect(manifests.at(-1)).toEqual({
      service: 'promoter',
      queues: ['promote'],
      entry: join(next, 'services', 'promoter', 'src', 'main.ts'),
    });
  });
});
