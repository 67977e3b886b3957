import { type Db, type OutboxDispatch, relayOutbox } from '@tuneline/db';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { PublishedMarks } from './published-marks.ts';
import type { Publisher } from './publisher.ts';

/**
 * The relay timer's rows must be at least this old: a live job publishes its own rows within
 * milliseconds of its commit, so the timer only picks up what a crashed or failed publish left.
 */
const RELAY_MIN_AGE_MS = 2_000;

/**
 * Moves committed outbox rows to Redis, one per process: a job's own rows right after the job
 * (`publishCaptured`), and on a timer whatever a crashed or failed publish left (`relay`).
 */
export class OutboxPublisher {
  private readonly marks: PublishedMarks;
  private relaying: Promise<number> | null = null;
  private relayAgain = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    /** Adds the jobs (one BullMQ Queue per queue name, shared with the recovery sweepers). */
    readonly publisher: Publisher,
    private readonly metrics?: Metrics,
  ) {
    this.marks = new PublishedMarks(db, log);
  }

  /**
   * Publishes rows an `OutboxCapture` collected (committed by this process just now) and marks them
   * published in the background. Never throws: what fails here is left to the relay.
   */
  async publishCaptured(rows: readonly OutboxDispatch[], log: Logger = this.log): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.publisher.publishOutboxRows(rows);
    } catch (err) {
      log.warn({ err: String(err) }, 'publishing committed messages failed; the outbox relay will');
      return;
    }
    this.count(rows);
    this.marks.add(rows.map((r) => r.id));
  }

  /** Publishes committed rows still unpublished (at least `minAgeMs` old); returns how many. */
  relay(minAgeMs = 0): Promise<number> {
    // One relay at a time per process. A caller arriving while one runs may have committed after that
    // relay read the outbox, so the running relay goes round once more before its callers resume.
    if (this.relaying) {
      this.relayAgain = true;
      return this.relaying;
    }
    this.relaying = (async () => {
      let published = 0;
      do {
        this.relayAgain = false;
        published += await this.relayOnce(minAgeMs);
      } while (this.relayAgain);
      return published;
    })().finally(() => {
      this.relaying = null;
    });
    return this.relaying;
  }

  /** Relays every `intervalMs` what a crashed worker committed but did not publish. */
  startTimer(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      this.relay(RELAY_MIN_AGE_MS).catch((err: unknown) =>
        this.log.warn({ err: String(err) }, 'outbox relay failed'),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops the timer and waits for the running relay and the pending marks. */
  async close(): Promise<void> {
    this.stopTimer();
    await this.relaying?.catch(() => {});
    await this.marks.flush();
  }

  private relayOnce(minAgeMs: number): Promise<number> {
    return relayOutbox(
      this.db,
      async (rows) => {
        await this.publisher.publishOutboxRows(rows);
        this.count(rows);
      },
      { minAgeMs },
    );
  }

  private count(rows: readonly OutboxDispatch[]): void {
    for (const row of rows) this.metrics?.outboxPublished.inc({ queue: row.queue });
  }
}
