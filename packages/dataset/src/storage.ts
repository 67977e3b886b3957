import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Where dataset files live. Keys are `/`-separated relative paths such as `datasets/<id>/train.jsonl`. */
export interface DatasetStorage {
  createWriteStream(key: string): Writable;
  openRead(key: string): Readable;
  stat(key: string): Promise<{ size: number }>;
  /** Deletes the object; no error when it does not exist. */
  remove(key: string): Promise<void>;
  /** A local path or URL that names the object (what the datasets grid shows). */
  path(key: string): string;
}

/** The repository root (this file is packages/dataset/src/storage.ts). */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** `STORAGE_DIR`, default `<repo>/.tuneline/storage`. */
export function defaultStorageDir(env: Record<string, string | undefined> = process.env): string {
  return env.STORAGE_DIR ? resolve(env.STORAGE_DIR) : join(repoRoot, '.tuneline', 'storage');
}

/**
 * How much a write stream buffers before it asks the writer to wait: several of LineWriter's 256 KiB
 * chunks. With the default 16 KiB every chunk made the builder wait for the disk, and each wait cost it
 * more CPU after waking (caches gone cold) than the write itself.
 */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Files under a local directory. */
export class LocalFileStorage implements DatasetStorage {
  readonly rootDir: string;

  constructor(rootDir: string = defaultStorageDir()) {
    this.rootDir = resolve(rootDir);
  }

  path(key: string): string {
    if (!key || isAbsolute(key) || key.split(/[\\/]/).includes('..')) {
      throw new Error(`storage key "${key}" must be a relative path without ".."`);
    }
    const full = resolve(this.rootDir, key);
    if (!full.startsWith(this.rootDir + sep)) throw new Error(`storage key "${key}" leaves the storage root`);
    return full;
  }

  createWriteStream(key: string): Writable {
    const full = this.path(key);
    mkdirSync(dirname(full), { recursive: true });
    return createWriteStream(full, { highWaterMark: WRITE_BUFFER_BYTES });
  }

  openRead(key: string): Readable {
    return createReadStream(this.path(key));
  }

  async stat(key: string): Promise<{ size: number }> {
    const s = await stat(this.path(key));
    return { size: s.size };
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
