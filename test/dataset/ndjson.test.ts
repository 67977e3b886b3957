import { createReadStream, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MAX_FIELD_DEPTH } from '@tuneline/contracts';
import { InvalidLine, readNdjsonDocuments, readNdjsonFile } from '@tuneline/dataset';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tuneline-ndjson-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function file(content: string | Buffer): string {
  const path = join(dir, `f${files++}.ndjson`);
  writeFileSync(path, content);
  return path;
}

/** The reference: what build-dataset read before, readline over a read stream. */
async function readWithReadline(path: string): Promise<unknown[]> {
  const items: unknown[] = [];
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    try {
      items.push(JSON.parse(line));
    } catch (err) {
      items.push({ invalidJson: `line ${lineNo}: ${(err as Error).message}` });
    }
  }
  return items;
}

describe('readNdjsonFile', () => {
  it('parses each non-blank line and names the line of one that is not JSON', () => {
    const path = file('{"id":"a"}\n\n   \n{"id":"b"}\r\n{oops\n[1,2]\n"x"');
    expect([...readNdjsonFile(path)]).toEqual([
      { id: 'a' },
      { id: 'b' },
      { invalidJson: expect.stringMatching(/^line 5: /) },
      [1, 2],
      'x',
    ]);
  });

  it('ends lines at LF, CRLF and a lone CR, counting lines as readline does', () => {
    const path = file('{"a":1}\r{"a":2}\r\n{"a":3}\n\r\n{bad\r{"a":4}\r');
    expect([...readNdjsonFile(path)]).toEqual([
      { a: 1 },
      { a: 2 },
      { a: 3 },
      { invalidJson: expect.stringMatching(/^line 5: /) },
      { a: 4 },
    ]);
  });

  it('reads an empty file as no items, and lines longer than its buffer whole', () => {
    expect([...readNdjsonFile(file(''))]).toEqual([]);
    const long = { id: 'long', text: 'é'.repeat(5000) };
    const path = file(`${JSON.stringify(long)}\n{"id":"short"}\n${JSON.stringify(long)}`);
    expect([...readNdjsonFile(path, 64)]).toEqual([long, { id: 'short' }, long]);
  });

  it('gives what readline gives for any text, whatever the buffer size', async () => {
    // Lines of JSON and not, blank lines, every line ending, multi-byte characters that straddle
    // the buffer's edges.
    const line = fc.oneof(
      fc.record({ id: fc.string(), text: fc.string({ unit: 'grapheme' }) }).map((o) => JSON.stringify(o)),
      fc.constantFrom('', '  ', '{bad', '"ü€😀"', '[1,\t2]', 'null'),
    );
    const ending = fc.constantFrom('\n', '\r\n', '\r', '\n\n');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(line, ending), { maxLength: 30 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        async (lines, lastEnding, readBytes) => {
          let text = lines.map(([l, e]) => l + e).join('');
          if (!lastEnding) text = text.replace(/[\r\n]+$/, '');
          const path = file(text);
          expect([...readNdjsonFile(path, readBytes)]).toEqual(await readWithReadline(path));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('closes the file when the reader stops early', () => {
    // Counted in /proc (Linux): synchronous, so nothing else opens or closes a file meanwhile.
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const path = file('{"a":1}\n{"a":2}\n');
    const before = openFiles();
    const items = readNdjsonFile(path);
    expect(items.next().value).toEqual({ a: 1 });
    expect(openFiles()).toBe(before + 1);
    items.return(undefined);
    expect(openFiles()).toBe(before);
  });
});

describe('readNdjsonDocuments', () => {
  it("checks each line with the request's document schema, naming the line and the field", () => {
    const doc = { id: 'a', text: 't', fields: { total: '1' } };
    let deep: unknown = 1;
    for (let i = 0; i < MAX_FIELD_DEPTH + 1; i++) deep = { x: deep };
    const path = file(
      [
        JSON.stringify(doc),
        '',
        JSON.stringify({ ...doc, id: 'b', extra: 1 }),
        '{nope',
        JSON.stringify({ ...doc, id: 'c', fields: { deep } }),
        JSON.stringify({ ...doc, id: '' }),
      ].join('\r\n'),
    );
    expect([...readNdjsonDocuments(path)]).toEqual([
      doc,
      new InvalidLine(3, [
        { field: 'extra', message: 'Unrecognized key "extra": not a field here (check its spelling)' },
      ]),
      new InvalidLine(4, [{ message: expect.stringMatching(/^not JSON: /) }]),
      new InvalidLine(5, [
        {
          field: 'fields.deep',
          message: `must not nest deeper than ${MAX_FIELD_DEPTH} levels of objects and arrays`,
        },
      ]),
      new InvalidLine(6, [{ field: 'id', message: 'must not be empty' }]),
    ]);
  });
});
