import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { PassThrough, type Readable, Transform, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Options of a read. */
export interface ReadOptions {
  /** The object's expected SHA-256 (hex): the stream fails with a `corrupt` StorageError on a mismatch. */
  sha256?: string | null | undefined;
}

/**
 * Where dataset files live. Keys are `/`-separated relative paths such as `datasets/<id>/train.jsonl`.
 * A write is visible under its key only once its stream finished: a writer that fails or dies midway
 * leaves nothing a later stage could read (at most an invisible temporary file or multipart upload; a
 * local one is removed by a later write of its key once stale, see STALE_PARTIAL_MS).
 */
export interface DatasetStorage {
  createWriteStream(key: string): Writable;
  /** Streams the object; a missing object fails the stream with a `missing` StorageError. */
  openRead(key: string, opts?: ReadOptions): Readable;
  /** A missing object rejects with a `missing` StorageError. */
  stat(key: string): Promise<{ size: number }>;
  /** Deletes the object; no error when it does not exist. */
  remove(key: string): Promise<void>;
  /** A local path or URL that names the object (what the datasets grid shows). */
  path(key: string): string;
}

/**
 * A storage failure that retrying will not fix: the object does not exist (`storage_missing`) or its
 * bytes are not the ones written (`storage_corrupt`). Stages treat both kinds as permanent.
 */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly kind: 'storage_missing' | 'storage_corrupt',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isStorageError = (err: unknown): err is StorageError => err instanceof StorageError;

export function missingObject(where: string, cause?: unknown): StorageError {
  return new StorageError('storage_missing', `dataset file ${where} does not exist in storage`, { cause });
}

/**
 * Passes the bytes through, hashing them; at the end a mismatch with `expected` fails the stream with a
 * `storage_corrupt` StorageError before it ends, so a consumer (an upload) never sees a clean end.
 */
export function verifySha256(expected: string, where: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const actual = hash.digest('hex');
      if (actual === expected) cb();
      else {
        cb(
          new StorageError(
            'storage_corrupt',
            `dataset file ${where} does not match its recorded hash (sha256 ${actual}, expected ${expected})`,
          ),
        );
      }
    },
  });
}

/**
 * `source` through a hash check (when `sha256` is given) or a pass-through: an error of `source` fails
 * the result as `mapError` says, and a consumer that stops reading closes `source`.
 */
export function checkedRead(
  source: Readable,
  where: string,
  sha256: string | null | undefined,
  mapError: (err: Error) => Error = (err) => err,
): Readable {
  const out = sha256 ? verifySha256(sha256, where) : new PassThrough({ highWaterMark: READ_BUFFER_BYTES });
  source.once('error', (err) => out.destroy(mapError(err)));
  out.once('close', () => source.destroy());
  return source.pipe(out);
}

/** Read-ahead of a checked read (the uploader's stream to the provider). */
const READ_BUFFER_BYTES = 256 * 1024;

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

/** Temporary files of unfinished writes end with this (never a key: keys are chosen by the stages). */
export const PARTIAL_SUFFIX = '.partial';

/**
 * A `.partial` file not modified for this long belongs to a writer that is gone. A live writer touches
 * its file at every write and, while it waits, every quarter of this bound, so a writer still writing
 * (in any process sharing the directory, with clocks within minutes) is never taken for a dead one.
 */
export const STALE_PARTIAL_MS = 60 * 60 * 1000;

/** Random bytes in a temporary file's name: `<final>.<12 hex digits>.partial`. */
const TEMP_ID_BYTES = 6;
/** What follows `<final>.` in a temporary file's name: TEMP_ID_BYTES as hex, then PARTIAL_SUFFIX. */
const TEMP_TAIL = /^[0-9a-f]{12}\.partial$/;

/**
 * Removes the `.partial` files of `final` (`<final>.<12 hex>.partial`, nothing else) not modified for
 * `staleMs`: what killed writers of the same file left. Best effort: a file another writer removes or
 * renames meanwhile, or one that cannot be removed, is left to the next write.
 */
async function removeStalePartials(final: string, staleMs: number): Promise<void> {
  const dir = dirname(final);
  const prefix = `${basename(final)}.`;
  const cutoff = Date.now() - staleMs;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !TEMP_TAIL.test(name.slice(prefix.length))) continue;
    const path = join(dir, name);
    const modified = await stat(path).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (modified !== undefined && modified < cutoff) await rm(path, { force: true }).catch(() => undefined);
  }
}

/**
 * Writes `<final>.<random>.partial` and renames it to `final` once everything is written and synced,
 * so the final name only ever holds a complete file. A failed or destroyed write removes its
 * temporary file; a killed process leaves only a `.partial` file that no key names, removed by a later
 * write of the same file once stale (STALE_PARTIAL_MS). While open, the writer touches its file every
 * quarter of that bound, so a writer that pauses keeps it.
 */
class AtomicFileWriter extends Writable {
  private handle: FileHandle | undefined;
  private readonly temp: string;
  private done = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly final: string,
    private readonly staleMs: number,
  ) {
    super({ highWaterMark: WRITE_BUFFER_BYTES });
    this.temp = `${final}.${randomBytes(TEMP_ID_BYTES).toString('hex')}${PARTIAL_SUFFIX}`;
  }

  override _construct(cb: (err?: Error | null) => void): void {
    mkdirSync(dirname(this.final), { recursive: true });
    removeStalePartials(this.final, this.staleMs)
      .then(() => open(this.temp, 'w'))
      .then(
        (h) => {
          this.handle = h;
          this.heartbeat = setInterval(() => this.touch(h), this.staleMs / 4).unref();
          cb();
        },
        (err: Error) => cb(err),
      );
  }

  /** Marks the temporary file as written now (a failure only means the next beat tries again). */
  private touch(handle: FileHandle): void {
    const now = new Date();
    handle.utimes(now, now).catch(() => undefined);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const handle = this.handle as FileHandle;
    let left = buffers;
    while (left.length) {
      const { bytesWritten } = await handle.writev(left);
      left = skipBytes(left, bytesWritten);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    const handle = this.handle as FileHandle;
    this.stopHeartbeat();
    handle
      .sync()
      .then(() => handle.close())
      .then(() => {
        this.handle = undefined;
        return rename(this.temp, this.final);
      })
      .then(() => {
        this.done = true;
        cb();
      }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stopHeartbeat();
    const handle = this.handle;
    this.handle = undefined;
    const cleanup = async () => {
      await handle?.close().catch(() => undefined);
      if (!this.done) await rm(this.temp, { force: true });
    };
    cleanup().then(
      () => cb(err),
      () => cb(err),
    );
  }
}

/** `buffers` without their first `n` bytes. */
function skipBytes(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  let left = n;
  while (i < buffers.length && left >= (buffers[i] as Buffer).length) left -= (buffers[i++] as Buffer).length;
  const rest = buffers.slice(i);
  if (left > 0 && rest.length) rest[0] = (rest[0] as Buffer).subarray(left);
  return rest;
}

const isNotFound = (err: unknown) => (err as { code?: string } | undefined)?.code === 'ENOENT';

export interface LocalFileStorageOptions {
  /** When a `.partial` file counts as left by a dead writer (default STALE_PARTIAL_MS; tests shorten it). */
  stalePartialMs?: number;
}

/** Files under a local directory. */
export class LocalFileStorage implements DatasetStorage {
  readonly rootDir: string;
  private readonly stalePartialMs: number;

  constructor(rootDir: string = defaultStorageDir(), opts: LocalFileStorageOptions = {}) {
    this.rootDir = resolve(rootDir);
    this.stalePartialMs = opts.stalePartialMs ?? STALE_PARTIAL_MS;
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
    return new AtomicFileWriter(this.path(key), this.stalePartialMs);
  }

  openRead(key: string, opts: ReadOptions = {}): Readable {
    const full = this.path(key);
    return checkedRead(
      createReadStream(full, { highWaterMark: READ_BUFFER_BYTES }),
      full,
      opts.sha256,
      (err) => (isNotFound(err) ? missingObject(full, err) : err),
    );
  }

  async stat(key: string): Promise<{ size: number }> {
    const full = this.path(key);
    try {
      const s = await stat(full);
      return { size: s.size };
    } catch (err) {
      throw isNotFound(err) ? missingObject(full, err) : err;
    }
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
