import { QUEUE_NAMES } from '@tuneline/contracts';
import { getBalance } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { requestInput } from '../dataset/fixtures.ts';
import { test } from '../support/fixtures.ts';
import { availableFineTune, EVERY_OUTER_STAGE, seedLicense } from './harness.ts';
import { fileRig } from './rig.ts';

// Every stage of every service, as their main.ts start them.
const rig = fileRig({ simulator: { seed: 61, speed: 2_000 }, outer: { stages: EVERY_OUTER_STAGE } });

describe('six stages in-process', () => {
  test('takes a fine-tune request from the queue to an available model, charged once, with an e-mail', async ({
    db,
    stages,
  }) => {
    // Every queue of the catalogue has its stage: a missing one fails here, by name, not as a timeout.
    stages.requireConsumers(QUEUE_NAMES);
    await seedLicense(db, 'lic-chain', 1_000_000n);
    const input = requestInput({
      requestId: 'chain-1',
      licenseId: 'lic-chain',
      autoTrain: true,
      job: { description: 'chain test', notifyEmails: 'owner@example.com', hyperparameters: 'auto' },
    });
    // Enqueued the way upstream apps do: through the typed producer.
    expect(await rig.submit(input, 'corr-chain-1')).toMatchObject({
      ok: true,
      correlationId: 'corr-chain-1',
      duplicate: false,
    });
    const fineTune = await availableFineTune(db, 'lic-chain');
    expect(fineTune.status).toBe('succeeded');
    expect(fineTune.settled_at).not.toBeNull();
    expect(BigInt(fineTune.credits_charged ?? '0')).toBeGreaterThan(0n);
    const mail = await rig.mailTo('owner@example.com');
    expect(mail.body).toContain(fineTune.fine_tuned_model ?? 'no model name');
    expect(mail.headers['x-tuneline-correlation-id']).toBe('corr-chain-1');
    expect(mail.body).toContain('Correlation id: corr-chain-1');
    const transfers = await db
      .selectFrom('ledger_transfers')
      .select(['kind'])
      .where('fine_tune_id', '=', fineTune.id)
      .execute();
    expect(transfers.map((t) => t.kind).sort()).toEqual(['post', 'reserve']);
    const balance = await getBalance(db, 'lic-chain');
    expect(balance.pending).toBe(0n);
    expect(rig.sim.admin.state().jobs.filter((j) => j.metadata?.fine_tune_id === fineTune.id)).toHaveLength(
      1,
    );

    // The request's correlationId on every row it produced (this file's database holds only this chain)
    // and on every message the stages queued through the outbox.
    const correlationIds = {
      requests: await db.selectFrom('fine_tune_requests').select('correlation_id').execute(),
      datasets: await db.selectFrom('datasets').select('correlation_id').execute(),
      fineTunes: await db.selectFrom('fine_tunes').select('correlation_id').execute(),
    };
    for (const [table, rows] of Object.entries(correlationIds)) {
      expect(rows.length, table).toBe(1);
      expect(rows[0]?.correlation_id, table).toBe('corr-chain-1');
    }
    const outbox = await db.selectFrom('outbox').select(['queue', 'payload']).execute();
    expect(new Set(outbox.map((r) => r.queue))).toEqual(
      new Set(['files-upload', 'finetune-create', 'finetune-poll', 'billing-settle', 'notify-send']),
    );
    for (const row of outbox) {
      expect((row.payload as { correlationId?: string }).correlationId, row.queue).toBe('corr-chain-1');
    }
  });
});
