import { closeSync, openSync, readSync } from 'node:fs';
import { documentSchema, fieldErrors } from '@tuneline/contracts';

/** Bytes read from the file at a time, into one buffer reused for the whole file. */
const READ_BYTES = 1024 * 1024;

/** What a line that is not JSON becomes: the builder reports it as an invalid document. */
export interface InvalidJsonLine {
  invalidJson: string;
}

/**
 * A line of an NDJSON document file that is not a valid document: its 1-based number (blank lines
 * count) and what is wrong, per field (no field when the line is not JSON). The builder reports each
 * problem as an `invalid_document` error naming the line and the field.
 */
export class InvalidLine {
  constructor(
    readonly line: number,
    readonly problems: readonly { field?: string; message: string }[],
  ) {}
}

/**
 * Each non-blank line of an NDJSON file of documents, checked by the same `documentSchema` a request's
 * documents pass (unknown keys refused, fields at most MAX_FIELD_DEPTH deep): the document, or an
 * `InvalidLine`. What `tuneline build-dataset` builds from.
 */
export function readNdjsonDocuments(path: string, readBytes = READ_BYTES): Generator<unknown> {
  return readLines(path, readBytes, (line, lineNo) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      return new InvalidLine(lineNo, [{ message: `not JSON: ${(err as Error).message}` }]);
    }
    const checked = documentSchema.safeParse(value);
    return checked.success ? value : new InvalidLine(lineNo, fieldErrors(checked.error));
  });
}

/**
 * Each non-blank line of an NDJSON file, parsed (a line that is not JSON yields an `InvalidJsonLine`
 * naming its line number).
 */
export function readNdjsonFile(path: string, readBytes = READ_BYTES): Generator<unknown> {
  return readLines(path, readBytes, (line, lineNo) => {
    try {
      return JSON.parse(line);
    } catch (err) {
      return { invalidJson: `line ${lineNo}: ${(err as Error).message}` } satisfies InvalidJsonLine;
    }
  });
}

/**
 * `item` of each non-blank line of a file, with the line's 1-based number. Lines end at LF, CRLF or a
 * lone CR, as readline splits them.
 *
 * Read synchronously into one reused buffer, and only complete lines are decoded. A read stream
 * (with readline) allocates a new 64 KiB buffer per read; those buffers outlive the young generation
 * while their lines are built, so they were freed only by a full collection: `tuneline build-dataset`
 * held the whole 166 MB input of 50,000 documents in buffers at its peak. A synchronous iterable is
 * also what the builder walks fastest (blocks without an await per document).
 */
function* readLines(
  path: string,
  readBytes: number,
  item: (line: string, lineNo: number) => unknown,
): Generator<unknown> {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafeSlow(readBytes);
    /** Bytes of buf holding data; `start` is where the current (unfinished) line begins. */
    let end = 0;
    let start = 0;
    let lineNo = 0;
    let eof = false;
    /** A line holding CRs: each part is a line (the LF of a CRLF ended the line already). */
    const splitAtCr = function* (line: string): Generator<unknown> {
      for (const part of (line.endsWith('\r') ? line.slice(0, -1) : line).split('\r')) {
        lineNo++;
        if (part.trim() !== '') yield item(part, lineNo);
      }
    };
    while (!eof) {
      if (start > 0) {
        // Keep the unfinished line: move it to the front.
        buf.copy(buf, 0, start, end);
        end -= start;
        start = 0;
      } else if (end === buf.length) {
        // One line longer than the buffer: grow it.
        const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
        buf.copy(bigger, 0, 0, end);
        buf = bigger;
      }
      const read = readSync(fd, buf, end, buf.length - end, null);
      if (read === 0) eof = true;
      end += read;
      const data = buf.subarray(0, end);
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        const line = buf.toString('utf8', start, nl);
        start = nl + 1;
        if (!line.includes('\r')) {
          lineNo++;
          if (line.trim() !== '') yield item(line, lineNo);
        } else yield* splitAtCr(line);
      }
      if (eof && start < end) {
        const line = buf.toString('utf8', start, end);
        start = end;
        yield* splitAtCr(line);
      }
    }
  } finally {
    closeSync(fd);
  }
}
