import { getEvaluationRunByFineTune } from '@tuneline/db';
import { getBalance } from '@tuneline/ledger';
import { createProvider, providerEnvSchema } from '@tuneline/provider';
import { describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { mimeParts } from '../evaluator/support.ts';
import { test } from '../support/fixtures.ts';
import { availableFineTune, seedLicense } from './harness.ts';
import { fileRig } from './rig.ts';

const rig = fileRig({
  simulator: { seed: 61, speed: 2_000 },
  profiles: (sim) => ({
    provider: createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'together',
        TOGETHER_API_KEY: sim.apiKey,
        TOGETHER_BASE_URL: `${sim.baseUrl}/together/v1`,
      }),
    ),
  }),
  outer: {},
});

describe('six stages in-process with the together profile', () => {
  test('takes a request for a Together model to an available model, charged once for the tokens Together reports, with an e-mail', async ({
    db,
  }) => {
    await seedLicense(db, 'lic-chain', 1_000_000n);
    const input = requestInput({
      requestId: 'chain-tg-1',
      licenseId: 'lic-chain',
      baseModel: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference',
      testPercent: 10,
      autoTrain: true,
      job: { description: 'chain test', notifyEmails: 'owner@example.com', hyperparameters: 'auto' },
    });
    await rig.submit(input, 'corr-chain-tg-1');
    const fineTune = await availableFineTune(db, 'lic-chain');
    expect(fineTune.status).toBe('succeeded');
    expect(fineTune.settled_at).not.toBeNull();
    expect(BigInt(fineTune.credits_charged ?? '0')).toBeGreaterThan(0n);
    const mail = await rig.mailTo('owner@example.com');
    // Plain text with an HTML alternative: the text part names the model.
    expect(mimeParts(mail.raw)['text/plain']).toContain(fineTune.fine_tuned_model ?? 'no model name');
    const transfers = await db
      .selectFrom('ledger_transfers')
      .select(['kind'])
      .where('fine_tune_id', '=', fineTune.id)
      .execute();
    // Training: one reservation and its post, the rest held for the evaluation; the evaluation: one charge.
    expect(transfers.map((t) => t.kind).sort()).toEqual(['evaluation', 'evaluation_hold', 'post', 'reserve']);
    expect((await getEvaluationRunByFineTune(db, fineTune.id))?.status).toBe('succeeded');
    const balance = await getBalance(db, 'lic-chain');
    expect(balance.pending).toBe(0n);
    // One Together job for this fine-tune, found by the tag in its suffix; billed for its token_count.
    const jobs = rig.sim.admin.together().jobs.filter((j) => j.suffix?.endsWith(`tl-${fineTune.id}`));
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.status).toBe('completed');
    expect(fineTune.provider_job_id).toBe(jobs[0]?.id);
    expect(fineTune.fine_tuned_model).toBe(jobs[0]?.model_output_name);
    expect(Number(fineTune.trained_tokens)).toBe(jobs[0]?.token_count);
    expect(BigInt(fineTune.credits_charged ?? '0')).toBe(
      (BigInt(jobs[0]?.token_count ?? 0) * 480n + 999_999n) / 1_000_000n,
    );
    // No webhook ever came: adaptive polling followed the job.
    expect(rig.sim.admin.state().jobs).toHaveLength(0);
  });
});
