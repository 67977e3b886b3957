import { closeSync, openSync, readSync } from 'node:fs';

/** Bytes read from the file at a time, into one buffer reused for the whole file. */
const READ_BYTES = 1024 * 1024;

/** What a line that is not JSON becomes: the builder reports it as an invalid document. */
export interface InvalidJsonLine {
  invalidJson: string;
}

/**
 * Each non-blank line of an NDJSON file, parsed (a line that is not JSON yields an `InvalidJsonLine`
 * naming its line number). Lines end at LF, CRLF or a lone CR, as readline splits them.
 *
 * Read synchronously into one reused buffer, and only complete lines are decoded. A read stream
 * (with readline) allocates a new 64 KiB buffer per read; those buffers outlive the young generation
 * while their lines are built, so they were freed only by a full collection: `tuneline build-dataset`
 * held the whole 166 MB input of 50,000 documents in buffers at its peak. A synchronous iterable is
 * also what the builder walks fastest (blocks without an await per document).
 */
export function* readNdjsonFile(path: string, readBytes = READ_BYTES): Generator<unknown> {
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
        if (part.trim() !== '') yield item(part);
      }
    };
    /** The line's item: its JSON, or the marker of a line that is not JSON. */
    const item = (line: string): unknown => {
      try {
        return JSON.parse(line);
      } catch (err) {
        return { invalidJson: `line ${lineNo}: ${(err as Error).message}` } satisfies InvalidJsonLine;
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
          if (line.trim() !== '') yield item(line);
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
