import { createHash } from 'node:crypto';

export function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The 8-character short form of a dataset hash: the default model suffix. */
export function shortHash(contentHash: string): string {
  return contentHash.slice(0, 8);
}
