import { createHash } from 'node:crypto';
import { canonicalJson } from '@tuneline/contracts';
import type { DatasetSettings } from './settings.ts';

/**
 * The split's seed: what shapes the files (not the request's ids, its job options or the documents), so
 * the CLI and the worker split the same documents the same way, and a document's rank depends on its
 * id alone: adding documents to a request moves few of the others across the split. A request that
 * names its `splitSeed` (a migration keeping its fine-tune's split on another base model) uses that.
 */
export function splitSeed(settings: DatasetSettings): string {
  if (settings.splitSeed !== undefined) return settings.splitSeed;
  const { modelConfig, dump, testPercent, baseModel } = settings;
  return createHash('sha256')
    .update(canonicalJson({ modelConfig, dump, testPercent, baseModel }))
    .digest('hex');
}

/**
 * The testing file's documents: a shuffle seeded by the settings (each document ranked by a 53-bit hash
 * of the seed and its id), first `testPercent` of them. The same request always gives the same split.
 */
export function chooseTestSet(
  ids: readonly (string | undefined)[],
  testPercent: number,
  seed: string,
): Set<number> {
  const count = Math.round((ids.length * testPercent) / 100);
  if (count <= 0) return new Set();
  // Ranks kept in a typed array (no per-document objects); equal ranks fall back to document order.
  const rankOf = seededRank(seed);
  const ranks = new Float64Array(ids.length);
  const order: number[] = [];
  ids.forEach((id, index) => {
    if (id === undefined) return;
    ranks[index] = rankOf(id);
    order.push(index);
  });
  order.sort((a, b) => (ranks[a] as number) - (ranks[b] as number) || a - b);
  return new Set(order.slice(0, count));
}

/**
 * The testing file's documents when a dataset has versions (re-training from the document store): a
 * document is in testing when its rank under the profile's seed falls in the first `testPercent` of
 * the 53-bit range. Membership depends on the document's id alone, never on the others, so adding
 * documents never moves an earlier testing document into training, and version k+1's testing set
 * holds version k's (minus deleted documents): champion and challenger are compared on the same ones.
 * The count is `testPercent` of the documents on average rather than exactly.
 */
export function stableTestSet(
  ids: readonly (string | undefined)[],
  testPercent: number,
  seed: string,
): Set<number> {
  const out = new Set<number>();
  if (testPercent <= 0) return out;
  const rankOf = seededRank(seed);
  const cut = (testPercent / 100) * 2 ** 53;
  ids.forEach((id, index) => {
    if (id !== undefined && rankOf(id) < cut) out.add(index);
  });
  return out;
}

/**
 * A 53-bit hash of `seed + "\0" + id` (cyrb53: two multiplicative 32-bit lanes, mixed at the end),
 * with the seed's part computed once. Not cryptographic, and need not be: it only has to shuffle ids
 * evenly and the same way every time, and it is ~20 times cheaper per id than SHA-256.
 */
export function seededRank(seed: string): (id: string) => number {
  let s1 = 0xdeadbeef;
  let s2 = 0x41c6ce57;
  for (let i = 0; i <= seed.length; i++) {
    const c = i < seed.length ? seed.charCodeAt(i) : 0;
    s1 = Math.imul(s1 ^ c, 2654435761);
    s2 = Math.imul(s2 ^ c, 1597334677);
  }
  return (id) => {
    let h1 = s1;
    let h2 = s2;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return 4294967296 * (0x1fffff & h2) + (h1 >>> 0);
  };
}
