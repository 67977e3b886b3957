/**
 * The day the suite lives on. The catalogue holds real provider dates (OpenAI stops new fine-tuning
 * jobs on 2027-01-06 and shuts the 4o/4.1 fine-tunes down on 2027-01-14), so a suite on the wall clock
 * would start failing on those days. Every process of a test run, and every process it spawns, reads
 * the date rules' clock moved to this instant (`TUNELINE_CLOCK_OFFSET_MS`, set by vitest.config.ts);
 * tests about dates hand their code a `fixedClock` of their own.
 */
export const SUITE_NOW = '2026-11-16T12:00:00.000Z';

/** The offset that moves the wall clock to `SUITE_NOW`, unless the caller has set one. */
export function suiteClockOffset(env: NodeJS.ProcessEnv = process.env): string {
  return env.TUNELINE_CLOCK_OFFSET_MS ?? String(Date.parse(SUITE_NOW) - Date.now());
}
