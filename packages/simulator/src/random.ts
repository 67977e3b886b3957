import { createHash } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A small seeded PRNG (mulberry32): same seed, same sequence, on every platform. */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  id(prefix: string, length = 24): string {
    let out = '';
    for (let i = 0; i < length; i++) out += ALPHABET[this.int(ALPHABET.length)];
    return `${prefix}${out}`;
  }
}

/**
 * An id derived from stable parts (job id + sequence number), so ids of things made by timers
 * (events, checkpoints, result files) don't depend on the order concurrent timers fire in.
 */
export function derivedId(prefix: string, parts: Array<string | number>, length = 24): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[(digest[i % digest.length] ?? 0) % ALPHABET.length];
  return `${prefix}${out}`;
}

/** A float in [0, 1) derived from stable parts: used for deterministic metrics. */
export function derivedFloat(parts: Array<string | number>): number {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  return digest.readUInt32BE(0) / 4294967296;
}
