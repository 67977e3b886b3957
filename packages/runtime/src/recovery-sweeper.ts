import type { QueueName } from '@tuneline/contracts';
import type { Metrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';
import type { Stage, StageDeps } from './stage.ts';

/**
 * Re-enqueues, from Postgres, the rows waiting on one stage: what a Redis that lost its data (or a
 * job whose attempts ran out during an outage) would otherwise leave waiting forever.
 */
export class RecoverySweeper<Q extends QueueName, D extends StageDeps> {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stage: Stage<Q, D>,
    private readonly deps: D,
    private readonly publisher: Publisher,
    private readonly metrics?: Metrics,
  ) {}

  /** Runs the sweep now; returns how many rows wait on the stage. */
  async sweep(): Promise<number> {
    if (!this.stage.recover) return 0;
    const listedAt = Date.now();
    const messages = await this.stage.recover(this.deps);
    let requeued = 0;
    for (const m of messages) {
      const outcome = await this.publisher.republish(m.queue, m.jobId, m.payload, m.delayMs, listedAt);
      if (outcome !== 'present') requeued++;
    }
    if (requeued) {
      const queue = this.stage.queue;
      this.metrics?.recovered.inc({ queue }, requeued);
      this.deps.log.info(
        { queue, waiting: messages.length, requeued },
        'recovery sweep re-enqueued waiting work',
      );
    }
    return messages.length;
  }

  /** Sweeps every `intervalMs`. */
  startTimer(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.log.warn({ err: String(err) }, 'recovery sweep failed'));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
