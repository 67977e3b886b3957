import { defineConfig } from 'vitest/config';
import { suiteClockOffset } from './test/support/suite-clock.ts';

// Set here, in the process that forks the test workers, so workers and the services they spawn inherit it.
process.env.TUNELINE_CLOCK_OFFSET_MS = suiteClockOffset();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Each file gets its own database and BullMQ prefix, so files run in parallel safely.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests hold ports and processes; a retry would hide a flaky one, so none.
    retry: 0,
    env: { TUNELINE_CLOCK_OFFSET_MS: process.env.TUNELINE_CLOCK_OFFSET_MS },
  },
});
