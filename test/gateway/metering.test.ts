import { randomUUID } from 'node:crypto';
import { inferenceUsageStage } from '@tuneline/billing';
import { inferenceUsageJobId, inferenceUsageMessage } from '@tuneline/contracts';
import { auditLedger, getBalance } from '@tuneline/ledger';
import { createLogger } from '@tuneline/runtime';
import { sql } from 'kysely';
import { afterAll, describe, expect } from 'vitest';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import type { StageRunner } from '../support/stage-runner.ts';
import {
  type ServingRig,
  simulatorChatCalls,
  startServingRig,
  licenseWithModel as withModel,
} from './support.ts';

let rig: ServingRig;
let model: string;
let baseURL: string;
let runner: StageRunner;
const log = createLogger('billing', 'silent');

test.beforeAll(async ({ database, prefix, stages }) => {
  runner = stages;
  rig = await startServingRig({ database, prefix });
  ({ model, baseURL } = rig);
});

afterAll(async () => {
  await runner?.closeAll(5_000);
  await rig?.close();
});

/** Billing's inference-usage stage, consuming the rig's queues (a real BullMQ worker). */
async function startBilling(): Promise<void> {
  await runner.start(
    inferenceUsageStage,
    { db: rig.t.db, log },
    { concurrency: 2, timers: false, outboxIntervalMs: 1_000 },
  );
}

/** Makes the next `n` inserts of the given kind of row fail in Postgres itself (then lets them through). */
async function failNextInserts(table: 'ledger_transfers' | 'inference_pending_usage', n: number) {
  const name = `gw_fail_${table}`;
  const when = table === 'ledger_transfers' ? "WHEN (NEW.kind = 'usage')" : '';
  await sql
    .raw(`
    DROP TRIGGER IF EXISTS ${name} ON ${table};
    DROP SEQUENCE IF EXISTS ${name}_seq;
    CREATE SEQUENCE ${name}_seq;
    CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('${name}_seq') <= ${n} THEN RAISE EXCEPTION 'injected failure of the metering write'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER ${name} BEFORE INSERT ON ${table} FOR EACH ROW ${when} EXECUTE FUNCTION ${name}();`)
    .execute(rig.t.db);
}

const licenseWithModel = (id: string) => withModel(rig, { model, baseURL }, id);

const body = () => ({
  model,
  messages: [
    { role: 'system' as const, content: 'Extract fields as JSON.' },
    { role: 'user' as const, content: 'INVOICE 1007\nTotal: 80.00 EUR' },
  ],
  max_tokens: 200,
});

const usageRows = (licenseId: string) =>
  rig.t.db.selectFrom('inference_usage').selectAll().where('license_id', '=', licenseId).execute();

/** The license's usage rows once there are any (`what` names the write waited for). */
const usageRowsOnceWritten = (licenseId: string, what: string) =>
  waitFor(
    async () => {
      const r = await usageRows(licenseId);
      return r.length > 0 ? r : undefined;
    },
    15_000,
    what,
  );

const clean = async () =>
  (await auditLedger(rig.t.db)).violations.filter((v) => !v.invariant.includes('settled fine-tune'));

describe('metering that loses nothing', () => {
  it('the ledger write fails once: the caller has its answer, the usage is applied once through the outbox', async () => {
    const lic = await licenseWithModel('lic-fail-once');
    await failNextInserts('ledger_transfers', 1);
    const answer = await lic.client.chat.completions.create(body());
    expect(answer.choices[0]?.message.content).toContain('80');
    // Not settled yet: the deferred usage and its message are in Postgres (and published to Redis).
    expect(await usageRows(lic.id)).toHaveLength(0);
    const pending = await rig.t.db.selectFrom('inference_pending_usage').selectAll().execute();
    expect(pending).toHaveLength(1);
    const callId = pending[0]?.call_id as string;
    const outbox = await rig.t.db
      .selectFrom('outbox')
      .selectAll()
      .where('job_id', '=', inferenceUsageJobId(callId))
      .execute();
    expect(outbox).toHaveLength(1);

    await startBilling();
    const rows = await usageRowsOnceWritten(lic.id, 'the deferred usage applied by billing');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: callId,
      prompt_tokens: answer.usage?.prompt_tokens,
      completion_tokens: answer.usage?.completion_tokens,
    });
    // The message again (redelivery, a second worker): nothing changes.
    await inferenceUsageStage.handle(
      inferenceUsageMessage({ callId, correlationId: callId }).payload as never,
      {
        queue: 'inference-usage',
        jobId: inferenceUsageJobId(callId),
        attempt: 2,
        correlationId: callId,
        log,
      },
      { db: rig.t.db, log },
    );
    expect(await usageRows(lic.id)).toHaveLength(1);
    const charged = BigInt(rows[0]?.credits ?? 0);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 100_000n - charged, pending: 0n });
    const applied = await rig.t.db.selectFrom('inference_pending_usage').select('applied_at').execute();
    expect(applied[0]?.applied_at).not.toBeNull();
    expect(await clean()).toEqual([]);
  });

  it('the outbox write fails too: the usage waits in the process and is applied once when Postgres takes it', async () => {
    const lic = await licenseWithModel('lic-fail-twice');
    await failNextInserts('ledger_transfers', 1);
    await failNextInserts('inference_pending_usage', 1);
    const answer = await lic.client.chat.completions.create(body());
    expect(answer.usage?.completion_tokens).toBeGreaterThan(0);
    const rows = await usageRowsOnceWritten(lic.id, 'the in-process retry');
    expect(rows).toHaveLength(1);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ pending: 0n });
    expect(await clean()).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('a retried call returns the first answer: one provider call, one charge', async () => {
    const lic = await licenseWithModel('lic-idem');
    const key = `idem-${randomUUID()}`;
    const before = simulatorChatCalls(rig.sim);
    const first = await lic.client.chat.completions.create(body(), { headers: { 'Idempotency-Key': key } });
    const again = await lic.client.chat.completions.create(body(), { headers: { 'Idempotency-Key': key } });
    expect(again).toEqual(first);
    expect(simulatorChatCalls(rig.sim) - before).toBe(1);
    const rows = await usageRows(lic.id);
    expect(rows).toHaveLength(1);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({
      posted: 100_000n - BigInt(rows[0]?.credits ?? 0),
      pending: 0n,
    });
    // Another request under the same key is refused; a call without a key is a new call.
    await expect(
      lic.client.chat.completions.create(
        { ...body(), max_tokens: 201 },
        { headers: { 'Idempotency-Key': key } },
      ),
    ).rejects.toMatchObject({ status: 422 });
    await lic.client.chat.completions.create(body());
    expect(simulatorChatCalls(rig.sim) - before).toBe(2);
    expect(await usageRows(lic.id)).toHaveLength(2);
    expect(await clean()).toEqual([]);
  });

  it('a key whose call got no answer is free again: the retry calls the provider', async () => {
    // A model the provider does not serve.
    const gone = 'ft:gpt-4o-mini-2024-07-18:gone:idem01';
    const { client, ...lic } = await withModel(rig, { model: gone, baseURL }, 'lic-idem-gone', 10_000n);
    const call = () =>
      client.chat.completions.create(
        { model: gone, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'Idempotency-Key': 'k-gone' } },
      );
    const before = simulatorChatCalls(rig.sim);
    await expect(call()).rejects.toMatchObject({ status: 502 });
    await expect(call()).rejects.toMatchObject({ status: 502 });
    expect(simulatorChatCalls(rig.sim) - before).toBe(2);
    expect(await getBalance(rig.t.db, lic.id)).toMatchObject({ posted: 10_000n, pending: 0n });
  });
});
