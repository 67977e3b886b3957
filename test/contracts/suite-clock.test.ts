import { processClock, utcDay } from '@tuneline/contracts';
import { describe, expect, it } from 'vitest';
import { SUITE_NOW } from '../support/suite-clock.ts';

// The suite must not start failing on the catalogue's real provider dates (2027-01-06, 2027-01-14).
describe('the suite clock', () => {
  it('moves every process of the run to the suite day, whatever the wall clock says', () => {
    expect(process.env.TUNELINE_CLOCK_OFFSET_MS).toMatch(/^-?\d+$/);
    expect(utcDay(processClock().now())).toBe(SUITE_NOW.slice(0, 10));
  });
});
