import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  createStorage,
  type DatasetStorage,
  LineWriter,
  PARTIAL_SUFFIX,
  StorageError,
  storageEnvSchema,
} from '@tuneline/dataset';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCaptured } from '../support/process.ts';
import { type S3TestServer, startS3Server } from '../support/s3.ts';

// One contract, two backends: a local directory (the default) and a bucket on a real S3-protocol
// server (s3rver) on loopback. A write is visible only once complete; reads check hashes; a missing
// object is a clear, permanent StorageError.

let s3: S3TestServer;
const dirs: string[] = [];
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Backend {
  name: 'local' | 's3';
  env(): Record<string, string>;
  /** Whether an unfinished write left something behind (a temporary file, multipart parts). */
  leftovers(): string[];
}

function localBackend(): Backend & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-contract-'));
  dirs.push(dir);
  const walk = (d: string): string[] =>
    existsSync(d)
      ? readdirSync(d, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
        )
      : [];
  return {
    name: 'local',
    dir,
    env: () => ({ STORAGE_BACKEND: 'local', STORAGE_DIR: dir }),
    leftovers: () => walk(dir).filter((f) => f.endsWith(PARTIAL_SUFFIX) && statSync(f).size > 0),
  };
}

function s3Backend(): Backend {
  return {
    name: 's3',
    env: () => s3.env,
    // s3rver keeps the parts of an unfinished multipart upload here until it completes.
    leftovers: () => {
      const uploads = join(s3.dir, s3.bucket, '._S3rver_uploads');
      return existsSync(uploads)
        ? readdirSync(uploads).flatMap((id) => readdirSync(join(uploads, id)).filter((f) => /^\d+$/.test(f)))
        : [];
    },
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** `n` bytes of JSONL-ish text that differ per line. */
function payload(n: number): Buffer {
  const line = (i: number) => `{"n":${i},"text":"${'x'.repeat(90)}"}\n`;
  const out = Buffer.alloc(n);
  let at = 0;
  for (let i = 0; at < n; i++) at += out.write(line(i), at);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe.each([
  ['local', localBackend],
  ['s3', s3Backend],
] as const)('storage contract: %s', { timeout: 60_000 }, (_name, makeBackend) => {
  let backend: Backend;
  let storage: DatasetStorage;
  beforeAll(async () => {
    backend = makeBackend();
    storage = await createStorage(storageEnvSchema.parse(backend.env()));
  });

  it('streams a large file in (multipart on S3: 20 MiB in 5 MiB parts) and back with the same bytes', async () => {
    const data = payload(20 * 1024 * 1024 + 123);
    const hash = createHash('sha256');
    // Small chunks, reused by LineWriter as soon as the stream calls back: a backend that holds on to a
    // buffer after its callback would send bytes overwritten since.
    const writer = new LineWriter(storage.createWriteStream('datasets/a/big/train.jsonl'), {
      hash,
      chunkBytes: 64 * 1024,
    });
    for (let at = 0; at < data.length; at += 1_000) {
      const wrote = writer.write(data.subarray(at, Math.min(at + 1_000, data.length)));
      if (wrote) await wrote;
    }
    await writer.end();
    expect(hash.digest('hex')).toBe(sha256(data));
    expect(await storage.stat('datasets/a/big/train.jsonl')).toEqual({ size: data.length });
    const back = await readAll(storage.openRead('datasets/a/big/train.jsonl', { sha256: sha256(data) }));
    expect(back.equals(data)).toBe(true);
    expect(backend.leftovers()).toEqual([]);
  });

  it('shows a write under its key only once it finished', async () => {
    const key = 'datasets/a/pending/train.jsonl';
    const out = storage.createWriteStream(key);
    const data = payload(6 * 1024 * 1024);
    await new Promise<void>((resolve, reject) => out.write(data, (err) => (err ? reject(err) : resolve())));
    expect(await rejection(storage.stat(key))).toMatchObject({ kind: 'storage_missing' });
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(() => resolve());
    });
    expect(await storage.stat(key)).toEqual({ size: data.length });
  });

  it('leaves nothing under the key when a write is destroyed midway (a failed build)', async () => {
    const key = 'datasets/a/destroyed/train.jsonl';
    const out = storage.createWriteStream(key);
    const closed = new Promise((resolve) => out.once('close', resolve));
    out.on('error', () => undefined);
    await new Promise<void>((resolve, reject) =>
      out.write(payload(7 * 1024 * 1024), (err) => (err ? reject(err) : resolve())),
    );
    out.destroy(new Error('the build failed'));
    await closed;
    expect(await rejection(storage.stat(key))).toMatchObject({ kind: 'storage_missing' });
    expect(await rejection(readAll(storage.openRead(key)))).toMatchObject({ kind: 'storage_missing' });
    expect(backend.leftovers()).toEqual([]);
  });

  it('leaves nothing under the key when the writing process is killed mid-write', async () => {
    const key = 'datasets/a/crashed/train.jsonl';
    const writer = spawnCaptured(['--import', 'tsx', join(import.meta.dirname, 'crash-writer.ts')], {
      env: { ...process.env, ...backend.env(), CRASH_KEY: key },
    });
    // Killed once it has demonstrably written part of the file: a temporary file with bytes in it, or
    // an uploaded part of an unfinished multipart upload.
    for (let i = 0; backend.leftovers().length === 0; i++) {
      if (i > 600) throw new Error(`the writer wrote nothing visible to the test: ${writer.output()}`);
      if (writer.child.exitCode !== null) throw new Error(`the writer exited: ${writer.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    writer.child.kill('SIGKILL');
    expect((await writer.exit).signal).toBe('SIGKILL');
    const err = await rejection(storage.stat(key));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ kind: 'storage_missing' });
    expect(await rejection(readAll(storage.openRead(key)))).toMatchObject({ kind: 'storage_missing' });
  });

  it('names a missing object clearly, on stat and on read', async () => {
    const key = 'datasets/none/train.jsonl';
    const err = await rejection(storage.stat(key));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe(`dataset file ${storage.path(key)} does not exist in storage`);
    const readErr = await rejection(readAll(storage.openRead(key, { sha256: sha256('') })));
    expect(readErr).toMatchObject({ kind: 'storage_missing', message: (err as Error).message });
  });

  it('checks the content hash on read: a mismatch fails the stream before it ends', async () => {
    const key = 'datasets/a/hashed/train.jsonl';
    const data = payload(300_000);
    const out = storage.createWriteStream(key);
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(data, () => resolve());
    });
    expect((await readAll(storage.openRead(key, { sha256: sha256(data) }))).equals(data)).toBe(true);
    const wrong = sha256('other content');
    const read = storage.openRead(key, { sha256: wrong });
    let ended = false;
    read.on('end', () => {
      ended = true;
    });
    const err = await rejection(readAll(read));
    expect(err).toMatchObject({ kind: 'storage_corrupt' });
    expect((err as Error).message).toContain(`expected ${wrong}`);
    expect((err as Error).message).toContain(storage.path(key));
    expect(ended).toBe(false);
  });

  it('removes an object, and removing a missing one is no error', async () => {
    const key = 'datasets/a/removed/train.jsonl';
    const out = storage.createWriteStream(key);
    await new Promise<void>((resolve) => out.end('{}\n', () => resolve()));
    await storage.remove(key);
    await storage.remove(key);
    expect(await rejection(storage.stat(key))).toMatchObject({ kind: 'storage_missing' });
  });
});

describe('storage configuration', () => {
  it('defaults to the local directory and refuses an incomplete S3 setting', async () => {
    expect(storageEnvSchema.parse({}).STORAGE_BACKEND).toBe('local');
    const noBucket = await rejection(createStorage(storageEnvSchema.parse({ STORAGE_BACKEND: 's3' })));
    expect((noBucket as Error).message).toContain('S3_BUCKET');
    const halfKey = await rejection(
      createStorage(
        storageEnvSchema.parse({ STORAGE_BACKEND: 's3', S3_BUCKET: 'tuneline', S3_ACCESS_KEY_ID: 'k' }),
      ),
    );
    expect((halfKey as Error).message).toContain('S3_SECRET_ACCESS_KEY');
    expect(storageEnvSchema.safeParse({ S3_FORCE_PATH_STYLE: 'yes' }).success).toBe(false);
  });
});
