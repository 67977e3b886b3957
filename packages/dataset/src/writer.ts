import type { Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

export interface LineWriterOptions {
  /** Size of the reusable chunk buffers (default 256 KiB). */
  chunkBytes?: number;
  /** Fed every byte written, in order (the file's content hash without encoding the lines twice). */
  hash?: Hash;
}

/**
 * Encodes lines straight into reusable chunk buffers and hands full chunks to the stream, honouring
 * backpressure, so a file of any size is written with bounded memory, few syscalls and one UTF-8
 * encode per line (no joined string, no Buffer per line or per chunk).
 */
export class LineWriter {
  private chunk: Buffer;
  private used = 0;
  /** Chunks the stream is done with, ready for reuse. */
  private readonly spare: Buffer[] = [];
  private lastStart = 0;
  private lastEnd = 0;
  /** The last line when it was too large for a chunk and went out as its own buffer. */
  private oversized: Buffer | undefined;
  private failed: Error | undefined;
  private readonly hash: Hash | undefined;
  private readonly chunkBytes: number;
  bytes = 0;

  constructor(
    private readonly stream: Writable,
    opts: LineWriterOptions = {},
  ) {
    this.chunkBytes = opts.chunkBytes ?? 256 * 1024;
    this.hash = opts.hash;
    this.chunk = Buffer.allocUnsafeSlow(this.chunkBytes);
    stream.on('error', (err) => {
      this.failed = err;
    });
  }

  /**
   * Appends one line made of `parts`: text, or bytes already encoded (constant parts: copied, not
   * encoded again). The caller supplies the trailing newline. Returns a promise only when a full chunk
   * went to the stream and the stream asked to wait; await it before the next write.
   */
  write(...parts: (string | Uint8Array)[]): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    let maxBytes = 0;
    for (const p of parts) maxBytes += typeof p === 'string' ? 3 * p.length : p.length;
    let flushed: Promise<void> | undefined;
    if (this.used + maxBytes > this.chunk.length) {
      flushed = this.flush();
      if (maxBytes > this.chunk.length) {
        const line = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
        this.oversized = line;
        const wrote = this.send(line, undefined);
        return flushed && wrote ? flushed.then(() => wrote) : (flushed ?? wrote);
      }
    }
    this.oversized = undefined;
    const chunk = this.chunk;
    let used = this.used;
    this.lastStart = used;
    for (const p of parts) {
      if (typeof p === 'string') used += chunk.write(p, used);
      else {
        chunk.set(p, used);
        used += p.length;
      }
    }
    this.used = this.lastEnd = used;
    return flushed;
  }

  /** The UTF-8 bytes of the line just written (a view, valid until the next write). */
  lastLine(): Buffer {
    return this.oversized ?? this.chunk.subarray(this.lastStart, this.lastEnd);
  }

  /** Hands the filled part of the chunk to the stream and continues in a spare chunk. */
  private flush(): Promise<void> | undefined {
    if (!this.used) return undefined;
    const full = this.chunk;
    const data = full.subarray(0, this.used);
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
    this.used = 0;
    return this.send(data, full);
  }

  /** Writes `data`; `reuse` goes back to the spare chunks once the stream has written it. */
  private send(data: Buffer, reuse: Buffer | undefined): Promise<void> | undefined {
    this.hash?.update(data);
    this.bytes += data.length;
    const more = this.stream.write(data, (err) => {
      if (!err && reuse) this.spare.push(reuse);
    });
    if (more) return undefined;
    return this.drain();
  }

  private async drain(): Promise<void> {
    await once(this.stream, 'drain');
    if (this.failed) throw this.failed;
  }

  async end(): Promise<void> {
    if (this.failed) throw this.failed;
    await this.flush();
    const finished = once(this.stream, 'finish');
    this.stream.end();
    await finished;
    if (this.failed) throw this.failed;
  }

  /** Closes without waiting for data (used when the dataset turned out invalid). */
  destroy(): void {
    this.stream.destroy();
  }
}
