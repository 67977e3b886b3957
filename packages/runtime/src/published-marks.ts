import { type Db, markOutboxPublished } from '@tuneline/db';
import type { Logger } from './logger.ts';

/**
 * Marks outbox rows published after their jobs put them on Redis, one UPDATE for whatever finished
 * meanwhile rather than one per job. A mark that fails or never runs (a crash) only means the relay
 * publishes the row again later, which BullMQ collapses by job id.
 */
export class PublishedMarks {
  private queued: string[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  add(ids: readonly string[]): void {
    this.queued.push(...ids);
    this.running ??= this.drain();
  }

  /** Resolves once every id added so far is marked (or its mark failed). */
  async flush(): Promise<void> {
    await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queued.length > 0) {
      const ids = this.queued;
      this.queued = [];
      try {
        await markOutboxPublished(this.db, ids);
      } catch (err) {
        this.log.warn({ err: String(err), rows: ids.length }, 'marking outbox rows published failed');
      }
    }
    this.running = null;
  }
}
