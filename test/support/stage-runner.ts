import type { QueueName } from '@tuneline/contracts';
import {
  createRedis,
  type Metrics,
  type RunningStage,
  type Stage,
  type StageDeps,
  startStage,
} from '@tuneline/runtime';
import type { Redis } from 'ioredis';

export interface StageRunnerOptions {
  /** WORKER_CONCURRENCY (default 8). */
  concurrency?: number;
  /** Periodic relay and recovery timers and the start-up sweep (default on). */
  timers?: boolean;
  /** OUTBOX_INTERVAL_MS (default 100: fast, so tests do not wait on the relay). */
  outboxIntervalMs?: number;
  metrics?: Metrics;
}

/** Runs stages in-process on their own Redis connections, timers fast so tests do not wait on them. */
export class StageRunner {
  private readonly running: { queue: QueueName; stage: RunningStage; conns: Redis[] }[] = [];

  constructor(
    private readonly redisUrl: string,
    readonly prefix: string,
  ) {}

  async start<Q extends QueueName, D extends StageDeps>(
    stage: Stage<Q, D>,
    deps: D,
    opts: StageRunnerOptions = {},
  ): Promise<RunningStage> {
    const workerConnection = createRedis(this.redisUrl, 'worker');
    const producerConnection = createRedis(this.redisUrl, 'worker');
    const running = await startStage(stage, {
      config: {
        QUEUE_PREFIX: this.prefix,
        WORKER_CONCURRENCY: opts.concurrency ?? 8,
        RECOVERY_INTERVAL_MS: 60_000,
        OUTBOX_INTERVAL_MS: opts.outboxIntervalMs ?? 100,
      },
      deps,
      workerConnection,
      producerConnection,
      metrics: opts.metrics,
      timers: opts.timers ?? true,
    });
    this.running.push({ queue: stage.queue, stage: running, conns: [workerConnection, producerConnection] });
    return running;
  }

  /** The queues of the stages running now, in start order. */
  queues(): QueueName[] {
    return this.running.map((r) => r.queue);
  }

  /** The running stage that consumes `queue`; throws, naming what runs, when none does. */
  consumer(queue: QueueName): RunningStage {
    const found = this.running.find((r) => r.queue === queue);
    if (!found) throw new Error(`no stage consumes ${queue} here (${describeRunning(this.queues())})`);
    return found.stage;
  }

  /**
   * Throws unless every one of `queues` has a running consumer: a chain with a stage missing fails
   * here, naming the queue, instead of stalling until a wait times out.
   */
  requireConsumers(queues: readonly QueueName[]): void {
    const running = this.queues();
    const missing = queues.filter((q) => !running.includes(q));
    if (missing.length > 0) {
      throw new Error(`no stage consumes ${missing.join(', ')} here (${describeRunning(running)})`);
    }
  }

  /** Closes one stage this runner started (its connections too). */
  async close(stage: RunningStage, timeoutMs = 2_000): Promise<{ drained: boolean }> {
    const index = this.running.findIndex((r) => r.stage === stage);
    if (index < 0) throw new Error('this stage was not started by this runner');
    const [entry] = this.running.splice(index, 1);
    try {
      return await stage.close(timeoutMs);
    } finally {
      for (const c of entry!.conns) c.disconnect();
    }
  }

  async closeAll(timeoutMs = 2_000): Promise<void> {
    for (const { stage, conns } of this.running.splice(0)) {
      await stage.close(timeoutMs).catch(() => {});
      for (const c of conns) c.disconnect();
    }
  }
}

function describeRunning(queues: readonly QueueName[]): string {
  return queues.length === 0 ? 'no stage is running' : `running: ${queues.join(', ')}`;
}
