/**
 * Time for the simulator. `now()` is wall-clock time (injectable for tests); simulated durations
 * are divided by `speed` before they become real timers, so a 20-minute job can take a second.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function unixSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

export class Scheduler {
  private readonly timers = new Set<NodeJS.Timeout>();
  constructor(
    readonly clock: Clock,
    readonly speed: number,
  ) {}

  /** Real milliseconds a simulated duration takes at this speed. */
  realMs(simulatedMs: number): number {
    return Math.max(0, Math.round(simulatedMs / this.speed));
  }

  /** Runs `fn` after `simulatedMs` of simulated time. Returns a cancel function. */
  after(simulatedMs: number, fn: () => void): () => void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, this.realMs(simulatedMs));
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  stopAll(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
