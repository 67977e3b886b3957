import {
  cancelPollJobId,
  fineTuneRequestSchema,
  idString,
  requestJobId,
  scheduledPollJobId,
  webhookPollJobId,
} from '@tuneline/contracts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/**
 * Job ids are how BullMQ collapses duplicate enqueues, so two different subjects sharing one is a
 * lost message (and, through the producer's read-back, one tenant seeing another's request).
 */

// Few letters and many separators: the ids that run into each other when joined carelessly.
const idChar = fc.constantFrom('X', 'e', 'u', '1', '-', '-', '-', '.', '_');
const licenseId = fc.string({ unit: idChar, minLength: 1, maxLength: 8 });
const requestId = fc.string({ unit: idChar, minLength: 1, maxLength: 8 });
const pair = fc.tuple(licenseId, requestId);

/**
 * Two pairs: independent ones, or a pair and the same text `<license>-<request>` split at another '-'
 * (`X` + `eu-1` and `X-eu` + `1`): the near misses a careless rule turns into collisions.
 */
const twoPairs = fc.oneof(
  fc.tuple(pair, pair),
  fc.tuple(pair, fc.nat()).map(([[l, r], k]): [[string, string], [string, string]] => {
    const joined = `${l}-${r}`;
    const cuts = [...joined].flatMap((c, i) => (c === '-' && i > 0 && i < joined.length - 1 ? [i] : []));
    const cut = cuts[k % cuts.length] ?? l.length;
    return [
      [l, r],
      [joined.slice(0, cut), joined.slice(cut + 1)],
    ];
  }),
);

/** The rule before issue 16.6: `<queue>-<license>-<request>`. */
const joinedWithDash = (license: string, request: string) => `fine-tune-requests-${license}-${request}`;

const distinctPairsGiveDistinctIds = (rule: (license: string, request: string) => string) =>
  fc.property(twoPairs, ([[l1, r1], [l2, r2]]) => {
    fc.pre(l1 !== l2 || r1 !== r2);
    return rule(l1, r1) !== rule(l2, r2);
  });

describe('fine-tune request job ids', () => {
  it('the generated ids are ones the request schema accepts', () => {
    const licenseSchema = idString('licenseId', 64);
    const requestSchema = idString('requestId');
    fc.assert(
      fc.property(pair, ([l, r]) => licenseSchema.safeParse(l).success && requestSchema.safeParse(r).success),
    );
    expect(fineTuneRequestSchema.shape.licenseId.safeParse('X-eu').success).toBe(true);
  });

  it('distinct (license, request) pairs never share a job id', () => {
    fc.assert(distinctPairsGiveDistinctIds(requestJobId), { numRuns: 5_000 });
    expect(requestJobId('X', 'eu-1')).not.toBe(requestJobId('X-eu', '1'));
  });

  it('(the same property finds the collision in the old rule, so it can fail)', () => {
    const result = fc.check(distinctPairsGiveDistinctIds(joinedWithDash), { numRuns: 5_000 });
    expect(result.failed).toBe(true);
    expect(joinedWithDash('X', 'eu-1')).toBe(joinedWithDash('X-eu', '1'));
  });

  it('never equals an id of the old form, so an upgrade cannot meet a job still in Redis', () => {
    fc.assert(
      fc.property(twoPairs, ([[l1, r1], [l2, r2]]) => requestJobId(l1, r1) !== joinedWithDash(l2, r2)),
      { numRuns: 5_000 },
    );
  });

  it('is readable and free of colons; a license id outside the schema is refused', () => {
    expect(requestJobId('lic-a', 'req-1')).toBe('fine-tune-requests-lic-a~req-1');
    fc.assert(fc.property(pair, ([l, r]) => !requestJobId(l, r).includes(':')));
    expect(() => requestJobId('X~eu', '1')).toThrow(/licenseId "X~eu" may only contain/);
    expect(() => requestJobId('lic', 'a:b')).toThrow(/must not contain ':'/);
  });
});

describe('poll job ids', () => {
  const fineTuneId = '7b0d4f0e-4a53-4a36-9d7e-1f0c3c7f0a11';

  it('a scheduled link, the cancel poll and webhook polls of one fine-tune never share an id', () => {
    const webhookIds = fc.string({ minLength: 1, maxLength: 120 });
    fc.assert(
      fc.property(fc.nat(), webhookIds, webhookIds, (n, w1, w2) => {
        const ids = [
          scheduledPollJobId(fineTuneId, n),
          cancelPollJobId(fineTuneId),
          webhookPollJobId(fineTuneId, w1),
        ];
        if (new Set(ids).size !== ids.length) return false;
        if (ids.some((id) => id.includes(':'))) return false;
        // Two deliveries share a poll only when they are the same delivery.
        return (w1 === w2) === (webhookPollJobId(fineTuneId, w1) === webhookPollJobId(fineTuneId, w2));
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps a plain webhook id readable and hashes any other (the old rule mapped a.b and a_b together)', () => {
    expect(webhookPollJobId(fineTuneId, 'msg_2Lh9')).toBe(`finetune-poll-${fineTuneId}-webhook-msg_2Lh9`);
    expect(webhookPollJobId(fineTuneId, 'a.b')).not.toBe(webhookPollJobId(fineTuneId, 'a_b'));
    expect(webhookPollJobId(fineTuneId, 'a:b')).toMatch(/-webhook-~[0-9a-f]{32}$/);
  });

  it('refuses a fine-tune id that is not a UUID (its fixed length is what keeps the parts apart)', () => {
    expect(() => scheduledPollJobId('ft-1', 3)).toThrow(/must be a UUID/);
    expect(() => scheduledPollJobId(fineTuneId, -1)).toThrow(/non-negative integer/);
  });
});
