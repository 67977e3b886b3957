import { retrainPolicySchema, trainingProfileSchema } from '@tuneline/contracts';
import { defaultCatalogue } from '@tuneline/dataset';
import {
  decideRetrain,
  estimateVersionCredits,
  monthStart,
  type RetrainInput,
} from '@tuneline/dataset-builder/retrain-policy';
import { describe, expect, it } from 'vitest';

const now = new Date('2026-12-03T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);

function input(
  over: Omit<Partial<RetrainInput>, 'policy'> & { policy?: Record<string, unknown> } = {},
): RetrainInput {
  return {
    trigger: 'policy',
    changes: { live: 500, changed: 0, removed: 0 },
    now,
    estimatedCredits: 100n,
    usedThisMonth: 0n,
    ...over,
    policy: retrainPolicySchema.parse({ minNewDocuments: 50, minIntervalHours: 24, ...(over.policy ?? {}) }),
  };
}

const v1 = { version: 1, documents: 400, createdAt: hoursAgo(48) };

describe('decideRetrain', () => {
  it('waits for the minimum number of documents before a first version, then trains', () => {
    expect(decideRetrain(input({ changes: { live: 9, changed: 9, removed: 0 } }))).toEqual({
      action: 'wait',
      reason: '9 documents stored; at least 10 are needed',
    });
    expect(decideRetrain(input({ changes: { live: 49, changed: 49, removed: 0 } })).action).toBe('wait');
    expect(decideRetrain(input({ changes: { live: 50, changed: 50, removed: 0 } }))).toEqual({
      action: 'train',
      reason: 'policy met: 50 documents stored',
    });
  });

  it('re-trains at N new or changed documents since the last version, not below', () => {
    const below = decideRetrain(input({ last: v1, changes: { live: 449, changed: 49, removed: 3 } }));
    expect(below).toEqual({
      action: 'wait',
      reason: '49 new or changed documents since version 1; 50 needed',
    });
    const at = decideRetrain(input({ last: v1, changes: { live: 450, changed: 50, removed: 3 } }));
    expect(at).toEqual({
      action: 'train',
      reason: 'policy met: 50 new or changed and 3 deleted documents since version 1',
    });
  });

  it("also re-trains on growth: X% of the last version's documents", () => {
    const policy = { minNewDocuments: 1_000, minGrowthPercent: 10 };
    expect(
      decideRetrain(input({ policy, last: v1, changes: { live: 439, changed: 39, removed: 0 } })).action,
    ).toBe('wait');
    expect(
      decideRetrain(input({ policy, last: v1, changes: { live: 440, changed: 40, removed: 0 } })).action,
    ).toBe('train');
  });

  it('never re-trains sooner than the minimum interval, however much changed', () => {
    const recent = { ...v1, createdAt: hoursAgo(23) };
    const d = decideRetrain(input({ last: recent, changes: { live: 5_000, changed: 4_600, removed: 0 } }));
    expect(d.action).toBe('wait');
    expect(d.reason).toContain('the next not before 2026-12-03T13:00:00.000Z (minIntervalHours 24)');
    expect(
      decideRetrain(
        input({
          last: { ...v1, createdAt: hoursAgo(24) },
          changes: { live: 5_000, changed: 4_600, removed: 0 },
        }),
      ).action,
    ).toBe('train');
  });

  it('refuses a version whose estimate would exceed the monthly budget, naming the figures', () => {
    // 800 of the month's 1,000 credits used already.
    const estimated = (estimatedCredits: bigint) =>
      decideRetrain(
        input({
          policy: { monthlyBudgetCredits: 1_000 },
          last: v1,
          changes: { live: 500, changed: 100, removed: 0 },
          estimatedCredits,
          usedThisMonth: 800n,
        }),
      );
    expect(estimated(300n)).toEqual({
      action: 'refuse',
      reason: 'estimated 300 credits would exceed the monthly budget of 1000 (800 used this month)',
    });
    expect(estimated(200n).action).toBe('train');
  });

  it('manual: skips the count and the interval, not the budget, and starts nothing when nothing changed', () => {
    const recent = { ...v1, createdAt: hoursAgo(1) };
    expect(
      decideRetrain(
        input({ trigger: 'manual', last: recent, changes: { live: 401, changed: 1, removed: 0 } }),
      ),
    ).toEqual({
      action: 'train',
      reason: 'asked for: 1 new or changed and 0 deleted documents since version 1',
    });
    expect(
      decideRetrain(
        input({ trigger: 'manual', last: recent, changes: { live: 400, changed: 0, removed: 0 } }),
      ),
    ).toEqual({
      action: 'wait',
      reason: 'nothing changed since version 1',
    });
    expect(
      decideRetrain(
        input({
          trigger: 'manual',
          policy: { monthlyBudgetCredits: 10 },
          last: recent,
          changes: { live: 401, changed: 1, removed: 0 },
          estimatedCredits: 11n,
        }),
      ).action,
    ).toBe('refuse');
  });
});

describe('estimateVersionCredits', () => {
  const profile = trainingProfileSchema.parse({
    name: 'inv',
    configuration: 'invoices',
    modelConfig: { systemPrompt: 'S', userPromptTemplate: '{{text}}', mappedFields: ['total'] },
    baseModel: 'gpt-4o-mini-2024-07-18',
    testPercent: 20,
    job: { hyperparameters: { n_epochs: 2 } },
  });

  it('prices the training share of the stored bytes at 4 bytes a token, for the epochs, at the catalogue price', () => {
    // 1,000 documents: 4,000,000 bytes + 9 bytes of prompts each; 80% trains: 801,800 tokens x 2 epochs.
    const credits = estimateVersionCredits(profile, { live: 1_000, liveBytes: 4_000_000 }, defaultCatalogue);
    const price = defaultCatalogue['gpt-4o-mini-2024-07-18']?.creditsPerMillionTrainingTokens ?? 0n;
    expect(credits).toBe((1_603_600n * price + 999_999n) / 1_000_000n);
    expect(credits).toBeGreaterThan(0n);
  });

  it('is 0 for a base model the catalogue does not know (the build refuses it with its own error)', () => {
    expect(
      estimateVersionCredits(
        { ...profile, baseModel: 'no-such-model' },
        { live: 10, liveBytes: 100 },
        defaultCatalogue,
      ),
    ).toBe(0n);
  });

  it('starts the month on its first day, UTC', () => {
    expect(monthStart(new Date('2026-12-31T23:59:59Z')).toISOString()).toBe('2026-12-01T00:00:00.000Z');
  });
});
