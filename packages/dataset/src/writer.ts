import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * Buffers lines into large chunks and honours backpressure, so a file of any size is written with
 * bounded memory and few syscalls.
 */
export class LineWriter {
  private buffer: string[] = [];
  private buffered = 0;
  private failed: Error | undefined;
  bytes = 0;

  constructor(
    private readonly stream: Writable,
    private readonly chunkBytes = 256 * 1024,
  ) {
    stream.on('error', (err) => {
      this.failed = err;
    });
  }

  async write(line: string): Promise<void> {
    this.buffer.push(line);
    this.buffered += line.length;
    if (this.buffered >= this.chunkBytes) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.buffered) return;
    const chunk = Buffer.from(this.buffer.join(''), 'utf8');
    this.buffer = [];
    this.buffered = 0;
    this.bytes += chunk.length;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
    if (this.failed) throw this.failed;
  }

  async end(): Promise<void> {
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
