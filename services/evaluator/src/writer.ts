/**
 * Writes answers behind the calls: a lane hands its scored answer over and asks its next example while
 * the answer is stored, and answers that arrive during a write (or within `lingerMs` of the first)
 * go together in one statement and one commit (group commit); the linger ends early once `batchSize`
 * answers wait. At most `maxPending` answers wait unwritten;
 * beyond that `add` waits for the write in progress. A failed write is kept and thrown by the next
 * `add` and by `drain`, so no lane goes on after a lost answer; an answer lost with a crash was never
 * stored, and is asked again on resume. `drain` writes what waits at once (no linger: nothing more comes).
 */
export class AnswerWriter<T> {
  private pending: T[] = [];
  private writing: Promise<void> | null = null;
  private inFlight = 0;
  private failure: { err: unknown } | undefined;
  /** Ends the current linger early (a full batch is waiting, or the calls are over). */
  private wake: (() => void) | null = null;
  /** Set by `drain`: no more answers are coming, so nothing lingers. */
  private flushing = false;

  constructor(
    private readonly write: (batch: T[]) => Promise<unknown>,
    private readonly maxPending: number,
    /** How long a write waits for more answers while fewer than `batchSize` are pending. */
    private readonly lingerMs = 20,
    private readonly batchSize = Math.max(1, Math.floor(maxPending / 2)),
  ) {}

  async add(item: T): Promise<void> {
    if (this.failure) throw this.failure.err;
    this.pending.push(item);
    if (this.pending.length >= this.batchSize) this.wake?.();
    this.kick();
    while (this.writing && this.pending.length + this.inFlight > this.maxPending) await this.writing;
    this.throwIfFailed();
  }

  /** Writes what waits without lingering and waits until everything handed over is written; throws a write's failure. */
  async drain(): Promise<void> {
    this.flushing = true;
    this.wake?.();
    while (this.writing) await this.writing;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.err;
  }

  private kick(): void {
    if (this.writing || this.pending.length === 0 || this.failure) return;
    this.writing = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.failure) {
        if (this.pending.length < this.batchSize && this.lingerMs > 0 && !this.flushing) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.lingerMs);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = null;
        }
        const batch = this.pending.splice(0);
        this.inFlight = batch.length;
        await this.write(batch);
        this.inFlight = 0;
      }
    } catch (err) {
      this.failure = { err };
      this.inFlight = 0;
    } finally {
      this.writing = null;
    }
  }
}
