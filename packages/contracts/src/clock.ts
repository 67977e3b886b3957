/**
 * The one clock every date rule reads (issue 21.5): a base model's training closing and shutdown, and
 * the lifecycle sweep's warnings. `TUNELINE_CLOCK_OFFSET_MS` moves it (tests, the simulator, the demo);
 * in production it is the system clock. Dates in the catalogue are UTC days: a rule dated D holds from
 * D 00:00 UTC on.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The system clock moved by `offsetMs` (0: the system clock itself). */
export function offsetClock(offsetMs: number): Clock {
  if (!Number.isFinite(offsetMs)) throw new RangeError('clock offset must be a finite number of ms');
  return offsetMs === 0 ? systemClock : { now: () => new Date(Date.now() + offsetMs) };
}

/** A clock that stands at `at` until moved (tests). */
export function fixedClock(at: Date | string): Clock & { set(at: Date | string): void } {
  let now = new Date(at);
  return {
    now: () => new Date(now),
    set(next) {
      now = new Date(next);
    },
  };
}

/** The clock `TUNELINE_CLOCK_OFFSET_MS` (an integer, may be negative) gives; the system clock without it. */
export function clockFromEnv(env: Record<string, string | undefined> = process.env): Clock {
  const raw = env.TUNELINE_CLOCK_OFFSET_MS;
  if (raw === undefined || raw === '') return systemClock;
  if (!/^-?\d+$/.test(raw.trim()))
    throw new Error(`TUNELINE_CLOCK_OFFSET_MS: must be an integer (got "${raw}")`);
  return offsetClock(Number(raw.trim()));
}

let fromEnv: Clock | undefined;

/**
 * The clock of this process: `TUNELINE_CLOCK_OFFSET_MS` read once, on first use. The default of every
 * date rule that is not handed a clock, so a process started with the offset (the suite pins one, see
 * vitest.config.ts) moves every rule, not only those its main.ts wires.
 */
export function processClock(): Clock {
  fromEnv ??= clockFromEnv(process.env);
  return fromEnv;
}

/** The UTC day of `at`, `YYYY-MM-DD` (what catalogue dates compare against). */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}
