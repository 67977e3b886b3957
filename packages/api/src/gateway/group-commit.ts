/**
 * Group commit, the gateway's way of writing to the ledger under load (holds and settlements): while one
 * group is being written, the next submissions gather, and go together in one statement (one round trip,
 * one commit) as soon as it returns. At concurrency 1 every submission is its own group, written at once
 * (no timer, no added wait); under load the statements per call fall with the group size. A group that
 * fails is written again one by one (`one`), so one bad element cannot fail the others.
 */
export interface GroupWrites<I, R> {
  /**
   * Writes a group in one statement: one result per input, in order. All or nothing, and it throws only
   * when nothing was written (a throw sends the group to `one`, element by element).
   */
  many(inputs: readonly I[]): Promise<R[]>;
  /** Writes one element alone (a group of one, or each element of a group that failed). */
  one(input: I): Promise<R>;
  /** Most elements in one statement. */
  maxGroup: number;
  /** Each group's size, as it is written (a metric). */
  onGroup?(size: number): void;
  /** A group failed and is being written one by one. */
  onGroupFailed?(err: unknown, size: number): void;
}

export class GroupCommit<I, R> {
  private readonly queue: Array<{ input: I; resolve(r: R): void; reject(err: unknown): void }> = [];
  private writing = false;

  constructor(private readonly writes: GroupWrites<I, R>) {}

  submit(input: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.writes.maxGroup);
        this.writes.onGroup?.(batch.length);
        if (batch.length > 1) {
          let results: R[] | undefined;
          try {
            results = await this.writes.many(batch.map((b) => b.input));
          } catch (err) {
            this.writes.onGroupFailed?.(err, batch.length);
          }
          if (results) {
            for (const [i, b] of batch.entries()) b.resolve(results[i] as R);
            continue;
          }
        }
        await Promise.all(batch.map((b) => this.writes.one(b.input).then(b.resolve, b.reject)));
      }
    } finally {
      this.writing = false;
    }
  }
}
