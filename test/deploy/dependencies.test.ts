import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { moduleImports, root } from './files.ts';

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const readManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** The peers an installed dependency asks for (none when it is not installed). */
function peersOf(dir: string, dep: string): string[] {
  try {
    return Object.keys(readManifest(join(dir, 'node_modules', dep)).peerDependencies ?? {});
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

describe('workspace dependencies', () => {
  it('are each imported by the package that declares them (an unused one only bloats its image)', () => {
    const unused: string[] = [];
    for (const group of ['packages', 'services']) {
      for (const name of readdirSync(join(root, group))) {
        const dir = join(root, group, name);
        const pkg = readManifest(dir);
        const declared = Object.keys(pkg.dependencies ?? {});
        const imported = moduleImports(dir, { types: true });
        // A peer another dependency needs (bullmq loads ioredis when given connection options) counts as used.
        const peers = new Set(declared.flatMap((d) => peersOf(dir, d)));
        for (const dep of declared) {
          if (imported.has(dep) || peers.has(dep)) continue;
          unused.push(`${pkg.name}: ${dep}`);
        }
      }
    }
    expect(unused).toEqual([]);
  });
});
