import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { LocalFileStorage, PARTIAL_SUFFIX, STALE_PARTIAL_MS } from '@tuneline/dataset';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCaptured } from '../support/process.ts';

// A killed writer leaves `<key>.<random>.partial` behind; the next write of the same key removes it once
// it is older than the bound. A live writer keeps its file fresh, so another writer never removes it.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-partials-'));
  dirs.push(dir);
  return dir;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const write = (out: Writable, data: string) =>
  new Promise<void>((resolve, reject) => out.write(data, (err) => (err ? reject(err) : resolve())));
/** Writes `data` as the whole of `key` and waits until it is renamed into place. */
const writeWhole = (storage: LocalFileStorage, key: string, data: string) =>
  finished(storage.createWriteStream(key).end(data));
/** Sets a file's modification time `ms` into the past. */
const age = (path: string, ms: number) => {
  const then = new Date(Date.now() - ms);
  utimesSync(path, then, then);
};

describe('local storage: leftover .partial files', { timeout: 60_000 }, () => {
  it("a write removes its key's .partial files older than the bound, and nothing else", async () => {
    const dir = tempDir();
    const storage = new LocalFileStorage(dir);
    mkdirSync(join(dir, 'd'));
    const at = (name: string) => join(dir, 'd', name);
    const names = {
      stale: `train.jsonl.0123456789ab${PARTIAL_SUFFIX}`,
      fresh: `train.jsonl.ba9876543210${PARTIAL_SUFFIX}`,
      otherKey: `test.jsonl.0123456789ab${PARTIAL_SUFFIX}`,
      notOurs: `train.jsonl${PARTIAL_SUFFIX}`,
    };
    for (const name of Object.values(names)) writeFileSync(at(name), 'x');
    for (const name of [names.stale, names.otherKey, names.notOurs]) age(at(name), STALE_PARTIAL_MS + 60_000);
    age(at(names.fresh), STALE_PARTIAL_MS - 60_000);

    await writeWhole(storage, 'd/train.jsonl', '{"a":1}\n');
    expect(readdirSync(join(dir, 'd')).sort()).toEqual(
      ['train.jsonl', names.fresh, names.otherKey, names.notOurs].sort(),
    );
  });

  it('removes what a killed writer left once it is stale, on the next write of its key', async () => {
    const dir = tempDir();
    const key = 'datasets/a/crashed/train.jsonl';
    const writer = spawnCaptured(['--import', 'tsx', join(import.meta.dirname, 'crash-writer.ts')], {
      env: { ...process.env, STORAGE_BACKEND: 'local', STORAGE_DIR: dir, CRASH_KEY: key },
    });
    const partials = () => readdirSync(join(dir, 'datasets/a/crashed'));
    for (let i = 0; !/wrote all/.test(writer.output()); i++) {
      if (i > 600) throw new Error(`the writer did not finish writing: ${writer.output()}`);
      if (writer.child.exitCode !== null) throw new Error(`the writer exited: ${writer.output()}`);
      await sleep(50);
    }
    writer.child.kill('SIGKILL');
    await writer.exit;
    const [left] = partials();
    expect(left).toMatch(/^train\.jsonl\.[0-9a-f]{12}\.partial$/);

    const storage = new LocalFileStorage(dir);
    // Not stale yet: kept (its writer might only be slow).
    await writeWhole(storage, key, '{"a":1}\n');
    expect(partials().sort()).toEqual(['train.jsonl', left]);
    // Stale: removed by the next write of the key.
    age(join(dir, 'datasets/a/crashed', left as string), STALE_PARTIAL_MS + 1000);
    await writeWhole(storage, key, '{"a":2}\n');
    expect(partials()).toEqual(['train.jsonl']);
  });

  it('never removes the file of a writer that is still writing, however long it pauses', async () => {
    const dir = tempDir();
    // A bound of 600 ms: the live writer keeps its file fresh while it waits 2 s between two writes.
    const storage = new LocalFileStorage(dir, { stalePartialMs: 600 });
    const slow = storage.createWriteStream('k/train.jsonl');
    await write(slow, '{"writer":"slow"}\n');
    await sleep(2000);
    // Another writer of the same key (a retried build) starts meanwhile and finishes first.
    await writeWhole(storage, 'k/train.jsonl', '{"writer":"fast"}\n');
    await write(slow, '{"writer":"slow","line":2}\n');
    slow.end();
    await finished(slow);
    expect(readFileSync(join(dir, 'k/train.jsonl'), 'utf8')).toBe(
      '{"writer":"slow"}\n{"writer":"slow","line":2}\n',
    );
    expect(readdirSync(join(dir, 'k'))).toEqual(['train.jsonl']);
  });
});
