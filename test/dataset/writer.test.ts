import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { LineWriter } from '@tuneline/dataset';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type TempStorage, tempStorage } from './fixtures.ts';

const stores: TempStorage[] = [];
afterAll(() => {
  for (const s of stores) s.cleanup();
});

/** Writes `lines` (each as several parts) and checks the file, byte count, hash and lastLine(). */
async function roundTrip(lines: string[][], chunkBytes: number): Promise<void> {
  const store = tempStorage();
  stores.push(store);
  const hash = createHash('sha256');
  // A small high-water mark: most chunk writes ask to wait for 'drain'.
  const stream = store.storage.createWriteStream('out.jsonl');
  const writer = new LineWriter(stream, { chunkBytes, hash });
  for (const parts of lines) {
    const wrote = writer.write(...parts);
    expect(writer.lastLine().toString('utf8')).toBe(parts.join(''));
    if (wrote) await wrote;
  }
  await writer.end();
  const expected = lines.map((p) => p.join('')).join('');
  const content = store.read('out.jsonl');
  expect(content).toBe(expected);
  expect(writer.bytes).toBe(Buffer.byteLength(expected));
  expect(hash.digest('hex')).toBe(createHash('sha256').update(expected, 'utf8').digest('hex'));
}

describe('LineWriter', { timeout: 60_000 }, () => {
  it('writes lines of any size and script through reused chunks, hashing exactly the bytes written', async () => {
    const line = (i: number) => [`{"n":${i},"t":`, JSON.stringify('é😀 ß'.repeat(i % 37)), '}\n'];
    const lines = Array.from({ length: 2_000 }, (_, i) => line(i));
    // Lines larger than a chunk go out on their own, between chunks.
    lines.splice(500, 0, ['x'.repeat(5_000), '\n'], ['ü'.repeat(3_000), '😀'.repeat(700), '\n']);
    await roundTrip(lines, 4_096);
  });

  it('matches the concatenated text for random lines (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }), { maxLength: 4 }), {
          maxLength: 60,
        }),
        fc.integer({ min: 64, max: 2_048 }),
        async (lines, chunkBytes) => {
          await roundTrip(
            lines.map((parts) => [...parts, '\n']),
            chunkBytes,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('takes encoded parts (bytes) between text parts, also in lines larger than a chunk', async () => {
    const store = tempStorage();
    stores.push(store);
    const hash = createHash('sha256');
    const writer = new LineWriter(store.storage.createWriteStream('out.jsonl'), { chunkBytes: 256, hash });
    const head = Buffer.from('{"t":"');
    const tail = Buffer.from('"}\n');
    const texts = ['a', 'ü😀', 'x'.repeat(300), '', 'ß'.repeat(40)];
    for (const t of texts) {
      const wrote = writer.write(head, t, tail);
      expect(writer.lastLine().toString('utf8')).toBe(`{"t":"${t}"}\n`);
      if (wrote) await wrote;
    }
    await writer.end();
    const expected = texts.map((t) => `{"t":"${t}"}\n`).join('');
    expect(store.read('out.jsonl')).toBe(expected);
    expect(writer.bytes).toBe(Buffer.byteLength(expected));
    expect(hash.digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
  });

  it('reports a stream error to the writer', async () => {
    const failing = new Writable({
      write(_chunk, _enc, cb) {
        cb(new Error('disk full'));
      },
    });
    const writer = new LineWriter(failing, { chunkBytes: 64 });
    await expect(
      (async () => {
        for (let i = 0; i < 100; i++) {
          const wrote = writer.write('x'.repeat(40), '\n');
          if (wrote) await wrote;
        }
        await writer.end();
      })(),
    ).rejects.toThrow('disk full');
  });
});
