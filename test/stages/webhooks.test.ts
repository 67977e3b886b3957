import { billingSettleJobId } from '@tuneline/contracts';
import { getFineTune, isTerminalStatus, requestCancel } from '@tuneline/db';
import { startWebhookServer, type WebhookServer } from '@tuneline/poller';
import { signWebhook } from '@tuneline/simulator';
import { afterAll, describe, expect } from 'vitest';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { quietLog } from './harness.ts';
import { makeProvider } from './provider.ts';
import { type Rig, recordedFineTune, startRig } from './rig.ts';

const SECRET = `whsec_${Buffer.from('tuneline-webhook-test-secret-32b').toString('base64')}`;
const TWENTY_MINUTES = 20 * 60_000;

let rig: Rig;
let hooks: WebhookServer;

test.beforeAll(async ({ db, stages }) => {
  hooks = await startWebhookServer({
    db,
    log: quietLog,
    port: 0,
    unwrap: (body, headers) => rig.provider.unwrapWebhook(body, headers),
    publish: async (rows) => rig.pipeline.stage('poller').publishCaptured(rows),
  });
  // Speed 20: a job takes ~8 real seconds, so it is still running after the first poll, and the cancel
  // test's cancel reaches it before it ends. At speed 100 (~1.5 s) the cancel test timed out once in a
  // loaded full run, most likely because the job had already succeeded and refused the cancel.
  rig = await startRig({
    db,
    runner: stages,
    simulator: { seed: 21, speed: 20, webhookUrl: hooks.url, webhookSecret: SECRET },
    profiles: (sim) => ({
      provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey, webhookSecret: SECRET }),
    }),
    // Polling at 20 minutes: only a webhook can bring the ending in time.
    schedule: { intervalMs: TWENTY_MINUTES, minIntervalMs: TWENTY_MINUTES },
    outer: { stages: ['billing'] },
  });
});

afterAll(async () => {
  await rig?.close();
  await hooks?.close();
});

async function startFineTune(licenseId: string): Promise<string> {
  return (await recordedFineTune(rig, licenseId, { timeoutMs: 15_000 })).id;
}

const publishedSettlements = (fineTuneId: string) =>
  rig.db
    .selectFrom('outbox')
    .selectAll()
    .where('job_id', '=', billingSettleJobId(fineTuneId))
    .where('published_at', 'is not', null)
    .execute();

async function post(body: string, headers: Record<string, string>) {
  const res = await fetch(hooks.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return res.status;
}

describe('provider webhooks', () => {
  it('a delivery makes the model available within 2 s of the simulator finishing, with 20-minute polling', async () => {
    rig.sim.admin.setFaults({ duplicateWebhookRate: 1 }); // every event delivered twice
    const fineTuneId = await startFineTune('lic-hook');
    const row = await getFineTune(rig.db, fineTuneId);
    const providerJobId = row?.providerJobId ?? '';
    // The simulator finishes the job on its own clock; note when.
    await waitFor(
      async () => rig.sim.admin.state().jobs.find((j) => j.id === providerJobId)?.status === 'succeeded',
      30_000,
      'simulator to finish the job',
    );
    const finishedAt = Date.now();
    const done = await waitFor(
      async () => {
        const r = await getFineTune(rig.db, fineTuneId);
        return r?.available ? r : null;
      },
      2_000,
      'the model to become available',
    );
    expect(Date.now() - finishedAt).toBeLessThan(2_000);
    expect(done.status).toBe('succeeded');
    expect(done.settledAt).not.toBeNull();
    expect(done.fineTunedModel).toBeTruthy();
    // The second copy of each delivery changed nothing: one delivery row, one poll, one settlement.
    await waitFor(
      async () =>
        rig.sim.admin.state().webhookDeliveries.filter((d) => d.jobId === providerJobId && d.delivered)
          .length >= 2,
      5_000,
      'both copies delivered',
    );
    const deliveries = await rig.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('provider_job_id', '=', providerJobId)
      .execute();
    expect(deliveries).toHaveLength(1);
    const webhookPolls = await rig.db
      .selectFrom('outbox')
      .select('job_id')
      .where('job_id', 'like', `finetune-poll-${fineTuneId}-webhook-%`)
      .execute();
    expect(webhookPolls).toHaveLength(1);
    expect(await publishedSettlements(fineTuneId)).toHaveLength(1);
    rig.sim.admin.setFaults({});
  });

  it('tampered, stale and wrongly signed deliveries get 400 and change nothing', async () => {
    const fineTuneId = await startFineTune('lic-tamper');
    // Let the first poll finish (it schedules the next one, 20 minutes out) before counting.
    const row = await waitFor(
      async () => {
        const r = await getFineTune(rig.db, fineTuneId);
        return r && r.pollCount >= 1 ? r : null;
      },
      10_000,
      'first poll',
    );
    const body = JSON.stringify({
      id: 'evt_forged',
      object: 'event',
      type: 'fine_tuning.job.succeeded',
      created_at: Math.floor(Date.now() / 1000),
      data: { id: row?.providerJobId },
    });
    const now = Math.floor(Date.now() / 1000);
    const headers = (id: string, ts: number, signature: string) => ({
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signature,
    });
    const countBefore = await rig.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    // Signed, then the body changed.
    expect(
      await post(
        body.replace('succeeded', 'failed'),
        headers('wh_t1', now, signWebhook(SECRET, 'wh_t1', now, body)),
      ),
    ).toBe(400);
    // Signed correctly, but an hour old.
    expect(
      await post(body, headers('wh_t2', now - 3600, signWebhook(SECRET, 'wh_t2', now - 3600, body))),
    ).toBe(400);
    // Signed with another secret.
    const other = `whsec_${Buffer.from('some-other-secret-of-32-bytes!!!').toString('base64')}`;
    expect(await post(body, headers('wh_t3', now, signWebhook(other, 'wh_t3', now, body)))).toBe(400);
    // No signature at all.
    expect(await post(body, { 'webhook-id': 'wh_t4', 'webhook-timestamp': String(now) })).toBe(400);

    const deliveries = await rig.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', 'in', ['wh_t1', 'wh_t2', 'wh_t3', 'wh_t4'])
      .execute();
    expect(deliveries).toHaveLength(0);
    const countAfter = await rig.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(countAfter.n).toBe(countBefore.n);
    const after = await getFineTune(rig.db, fineTuneId);
    expect(after?.status).toBe(row?.status);
    expect(after?.pollCount).toBe(row?.pollCount);
  });

  it('cancel: the provider job is cancelled and the fine-tune ends cancelled with one settlement', async () => {
    const fineTuneId = await startFineTune('lic-cancel');
    const result = await requestCancel(rig.db, fineTuneId);
    expect(result.ok).toBe(true);
    await rig.pipeline.stage('poller').relayOutbox();
    // Any ending, then which one: a job that ended another way fails here with its status.
    const done = await waitFor(
      async () => {
        const r = await getFineTune(rig.db, fineTuneId);
        return r && isTerminalStatus(r.status) ? r : null;
      },
      10_000,
      'an ending',
    );
    expect(done.status).toBe('cancelled');
    expect(done.cancelRequestedAt).not.toBeNull();
    expect(rig.sim.admin.state().jobs.find((j) => j.id === done.providerJobId)?.status).toBe('cancelled');
    await waitFor(async () => (await publishedSettlements(fineTuneId)).length > 0, 5_000, 'settlement');
    expect(await publishedSettlements(fineTuneId)).toHaveLength(1);
    // Billing released the whole reservation.
    const transfers = await waitFor(
      async () => {
        const t = await rig.db
          .selectFrom('ledger_transfers')
          .select('kind')
          .where('fine_tune_id', '=', fineTuneId)
          .execute();
        return t.some((x) => x.kind === 'void') ? t : null;
      },
      5_000,
      'reservation released',
    );
    expect(transfers.map((t) => t.kind).sort()).toEqual(['reserve', 'void']);
    // Asking again once it has ended is refused and changes nothing.
    expect(await requestCancel(rig.db, fineTuneId)).toMatchObject({ ok: false, reason: 'already_finished' });
  });
});
