import { autoTrainFineTuneId } from '@tuneline/db';
import { nextPollDelayMs } from '@tuneline/poller';
import { reservationAmount } from '@tuneline/trainer';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const schedule = { intervalMs: 20 * 60_000, minIntervalMs: 2 * 60_000, finishGraceMs: 5_000 };

describe('poll schedule', () => {
  it('starts at the minimum after a change and doubles while nothing changes, up to the interval', () => {
    const delays = [0, 1, 2, 3, 4, 5, 20].map((unchangedPolls) =>
      nextPollDelayMs({ unchangedPolls, estimatedFinish: null }, schedule),
    );
    expect(delays).toEqual([120_000, 240_000, 480_000, 960_000, 1_200_000, 1_200_000, 1_200_000]);
  });

  it('polls just after the estimated finish when that comes sooner', () => {
    const now = 1_000_000;
    const finish = new Date(now + 5 * 60_000);
    expect(nextPollDelayMs({ unchangedPolls: 10, estimatedFinish: finish }, schedule, now)).toBe(
      5 * 60_000 + 5_000,
    );
    // Never sooner than the minimum, and a finish already past does not shorten the back-off.
    const soon = new Date(now + 1_000);
    expect(nextPollDelayMs({ unchangedPolls: 10, estimatedFinish: soon }, schedule, now)).toBe(120_000);
    const past = new Date(now - 60_000);
    expect(nextPollDelayMs({ unchangedPolls: 2, estimatedFinish: past }, schedule, now)).toBe(480_000);
  });
});

describe('reservation amount', () => {
  it('adds the margin and rounds up to whole credits', () => {
    expect(reservationAmount(100n, 10)).toBe(110n);
    expect(reservationAmount(101n, 10)).toBe(112n); // 111.1 → 112
    expect(reservationAmount(0n, 10)).toBe(0n);
    expect(reservationAmount(1_000_000_000_000n, 0)).toBe(1_000_000_000_000n);
    expect(reservationAmount(7n, 12.5)).toBe(8n); // 7.875 → 8
  });
});

describe('auto-train fine-tune id', () => {
  it('is a valid uuid, stable per dataset and different across datasets', () => {
    const a = autoTrainFineTuneId('3f0c8d1e-1111-4222-8333-444455556666');
    expect(z.uuid().safeParse(a).success).toBe(true);
    expect(autoTrainFineTuneId('3f0c8d1e-1111-4222-8333-444455556666')).toBe(a);
    expect(autoTrainFineTuneId('3f0c8d1e-1111-4222-8333-444455556667')).not.toBe(a);
  });
});
