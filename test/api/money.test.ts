import { buildApi } from '@tuneline/api';
import { billingStage } from '@tuneline/billing';
import { estimateEvaluation, loadCatalogue } from '@tuneline/dataset';
import { datasetBuilderStage } from '@tuneline/dataset-builder';
import { type DatasetRecord, type FineTuneRecord, findDataset, getFineTune } from '@tuneline/db';
import { startSmtpServer } from '@tuneline/harness';
import {
  auditLedger,
  creditShortfall,
  fineTuneEstimate,
  getBalance,
  grantCredits,
  insufficientCreditsMessage,
  postReservation,
  reservationAmount,
  reserveCredits,
} from '@tuneline/ledger';
import { notifierStage, smtpMailer } from '@tuneline/notifier';
import { createRedis } from '@tuneline/runtime';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect } from 'vitest';
import { invoices } from '../dataset/fixtures.ts';
import { mimeParts } from '../evaluator/support.ts';
import {
  type Pipeline,
  quietLog,
  type StorageFixture,
  startPipeline,
  tempStorage,
} from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { redisUrl, type TestDatabase, waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';

/**
 * Money (issue 16.1, 16.2), end to end: the API, the six stages, the simulator over HTTP and SMTP on
 * loopback. A fine-tune reserves for its own epochs, not the dataset's estimate; the API refuses at
 * once (402, with the amounts) what the trainer would refuse; a request through the queue that the
 * trainer refuses says the same amounts in its row and its e-mail. The ledger audit is clean after each.
 */

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON
type AnyJson = any;

const MARGIN = 10;
const EPOCHS = 10;
const catalogue = loadCatalogue({});

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let redis: Redis;
let app: Awaited<ReturnType<typeof buildApi>>;

test.beforeAll(async ({ database, prefix, stages }) => {
  tdb = database;
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({ port: 0, seed: 16, speed: 2_000 });
  pipeline = await startPipeline({
    db: tdb.db,
    runner: stages,
    provider: makeProvider({ baseURL: sim.url, apiKey: sim.apiKey }),
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await stages.start(datasetBuilderStage, {
    db: tdb.db,
    log: quietLog,
    storage: files.storage,
    catalogue,
  });
  await stages.start(billingStage, { db: tdb.db, log: quietLog });
  await stages.start(notifierStage, {
    db: tdb.db,
    log: quietLog,
    mailer: smtpMailer(smtp.url, { timeoutMs: 5_000 }),
    mailFrom: 'tuneline@example.com',
  });
  redis = createRedis(redisUrl(), 'producer');
  app = await buildApi({
    db: tdb.db,
    redis,
    queuePrefix: prefix,
    catalogue,
    reservationMarginPercent: MARGIN,
  });
});

afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
});

async function post(url: string, key: string, payload?: unknown) {
  const res = await app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
  return { status: res.statusCode, json: res.json() as AnyJson };
}

function fineTuneRequest(requestId: string, job: Record<string, unknown>, autoTrain: boolean) {
  return {
    requestId,
    documents: invoices(60),
    modelConfig: {
      systemPrompt: 'You extract invoice fields and answer with JSON.',
      userPromptTemplate: 'Document {{documentId}}:\n{{text}}',
      mappedFields: ['invoiceNumber', 'total'],
    },
    baseModel: 'gpt-4o-mini-2024-07-18',
    autoTrain,
    job,
  };
}

async function expectCleanLedger(): Promise<void> {
  expect(await auditLedger(tdb.db)).toEqual({ violations: [] });
}

async function datasetOf(licenseId: string, status: DatasetRecord['status']): Promise<DatasetRecord> {
  const row = await waitFor(
    async () =>
      tdb.db.selectFrom('datasets').select('id').where('license_id', '=', licenseId).executeTakeFirst(),
    30_000,
    `a dataset of ${licenseId}`,
  );
  return waitFor(
    async () => {
      const d = await findDataset(tdb.db, row.id);
      return d?.status === status ? d : null;
    },
    30_000,
    `dataset ${row.id} to be ${status}`,
  );
}

async function settled(fineTuneId: string): Promise<FineTuneRecord> {
  return waitFor(
    async () => {
      const row = await getFineTune(tdb.db, fineTuneId);
      return row?.settledAt ? row : null;
    },
    30_000,
    `fine-tune ${fineTuneId} to be settled`,
  );
}

const transfersOf = (fineTuneId: string) =>
  tdb.db
    .selectFrom('ledger_transfers')
    .select(['kind', 'amount'])
    .where('fine_tune_id', '=', fineTuneId)
    .orderBy('seq')
    .execute();

/** Posts the fine-tune request (accepted: 202), then uploads its dataset once it is ready (202); the uploaded dataset. */
async function uploadedDataset(lic: { id: string; key: string }, request: unknown): Promise<DatasetRecord> {
  expect((await post('/v1/fine-tune-requests', lic.key, request)).status).toBe(202);
  const ready = await datasetOf(lic.id, 'ready');
  expect((await post(`/v1/datasets/${ready.id}/upload`, lic.key)).status).toBe(202);
  return datasetOf(lic.id, 'uploaded');
}

describe('a fine-tune created from a dataset with its own hyperparameters (16.1, 16.2)', () => {
  it('is refused at once with 402 and the amounts, then reserved and charged for its own epochs', async () => {
    const lic = await makeLicense(tdb.db, 'lic-epochs', 0n);
    const dataset = await uploadedDataset(
      lic,
      fineTuneRequest('epochs-1', { hyperparameters: 'auto' }, false),
    );

    // The dataset was estimated for the `auto` epochs; the job asks for 10.
    expect(dataset.epochs).toBe(3);
    const price = catalogue['gpt-4o-mini-2024-07-18']?.creditsPerMillionTrainingTokens ?? 0n;
    const billed = ((dataset.estimatedBilledTokens ?? 0n) / 3n) * BigInt(EPOCHS);
    const jobEstimate = (billed * price + 999_999n) / 1_000_000n;
    expect(jobEstimate).toBeGreaterThan((dataset.estimatedCredits ?? 0n) * 3n);
    const required = reservationAmount(jobEstimate, MARGIN);

    // Enough for the dataset's estimate plus margin, not for the job's own.
    const granted = reservationAmount(dataset.estimatedCredits ?? 0n, MARGIN) + 1n;
    await tdb.db
      .transaction()
      .execute((tx) => grantCredits(tx, { grantId: 'epochs-first', licenseId: lic.id, amount: granted }));
    const refused = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, {
      hyperparameters: { n_epochs: EPOCHS },
      idempotencyKey: 'ten-epochs',
    });
    expect(refused.status).toBe(402);
    expect(refused.json.error).toEqual({
      message:
        `Insufficient credits: this fine-tune needs ${required} credits (estimate ${jobEstimate} + ${MARGIN}% margin), ` +
        `the license has ${granted} available, a shortfall of ${required - granted} credits.`,
      code: 'insufficient_credits',
      credits: {
        estimate: jobEstimate.toString(),
        training: jobEstimate.toString(),
        evaluation: '0',
        evaluationExamples: 0,
        evaluationModels: 0,
        marginPercent: MARGIN,
        required: required.toString(),
        available: granted.toString(),
        shortfall: (required - granted).toString(),
      },
    });
    expect(
      await tdb.db.selectFrom('fine_tunes').select('id').where('license_id', '=', lic.id).execute(),
    ).toEqual([]);
    await expectCleanLedger();

    // Topped up by exactly the shortfall: accepted, and the trainer reserves the job's own estimate.
    await tdb.db
      .transaction()
      .execute((tx) =>
        grantCredits(tx, { grantId: 'epochs-top-up', licenseId: lic.id, amount: required - granted }),
      );
    const created = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, {
      hyperparameters: { n_epochs: EPOCHS },
      idempotencyKey: 'ten-epochs',
    });
    expect(created.status).toBe(201);
    const done = await settled(created.json.id);
    expect([done.status, done.errorMessage]).toEqual(['succeeded', null]);
    expect(done.creditsReserved).toBe(required);
    // The provider trained 10 epochs; the reservation covered it: no overage, nothing blocked.
    const trained = done.trainedTokens ?? 0n;
    expect(trained).toBeGreaterThan((dataset.estimatedBilledTokens ?? 0n) * 3n);
    expect(done.creditsCharged).toBe((trained * price + 999_999n) / 1_000_000n);
    expect(done.creditsCharged ?? 0n).toBeLessThanOrEqual(required);
    expect((await transfersOf(done.id)).map((t) => t.kind)).toEqual(['reserve', 'post']);
    const balance = await getBalance(tdb.db, lic.id);
    expect(balance).toMatchObject({ pending: 0n, overageBlocked: false });
    expect(balance.posted).toBe(required - (done.creditsCharged ?? 0n));
    await expectCleanLedger();
  });
});

describe('a fine-tune of a dataset with a testing file (18.3)', () => {
  it('is refused at once with the evaluation in the estimate, split from the training; reserved as checked', async () => {
    const lic = await makeLicense(tdb.db, 'lic-evaluated', 0n);
    const dataset = await uploadedDataset(lic, {
      ...fineTuneRequest('evaluated-1', { hyperparameters: 'auto' }, false),
      testPercent: 20,
    });
    expect(dataset.testExamples).toBe(12);
    const training = dataset.estimatedCredits ?? 0n;
    const evaluation = estimateEvaluation({
      baseModel: dataset.baseModel,
      testExamples: dataset.testExamples,
      testTokens: dataset.testTokens,
    });
    expect(evaluation.credits).toBeGreaterThan(0n);
    const required = reservationAmount(training + evaluation.credits, MARGIN);

    // Asked without the evaluation, the estimate is the training's alone.
    const without = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, { evaluate: false });
    expect(without.status).toBe(402);
    expect(without.json.error.credits).toMatchObject({
      estimate: training.toString(),
      training: training.toString(),
      evaluation: '0',
      evaluationExamples: 0,
    });

    // Enough for the training plus margin, not for the evaluation on top.
    const granted = reservationAmount(training, MARGIN);
    expect(granted).toBeLessThan(required);
    await tdb.db
      .transaction()
      .execute((tx) => grantCredits(tx, { grantId: 'evaluated-first', licenseId: lic.id, amount: granted }));
    const refused = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, { idempotencyKey: 'eval' });
    expect(refused.status).toBe(402);
    expect(refused.json.error).toEqual({
      message:
        `Insufficient credits: this fine-tune needs ${required} credits (estimate ${training + evaluation.credits} = ` +
        `training ${training} + evaluation ${evaluation.credits}, plus ${MARGIN}% margin), the license has ` +
        `${granted} available, a shortfall of ${required - granted} credits.`,
      code: 'insufficient_credits',
      credits: {
        estimate: (training + evaluation.credits).toString(),
        training: training.toString(),
        evaluation: evaluation.credits.toString(),
        evaluationExamples: 12,
        evaluationModels: 3,
        marginPercent: MARGIN,
        required: required.toString(),
        available: granted.toString(),
        shortfall: (required - granted).toString(),
      },
    });
    // A smaller sample costs less, but still more than the training alone.
    const capped = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, {
      evaluation: { maxExamples: 2 },
    });
    expect(capped.status).toBe(402);
    expect(capped.json.error.credits).toMatchObject({ evaluationExamples: 2, training: training.toString() });
    expect(BigInt(capped.json.error.credits.evaluation)).toBeLessThan(evaluation.credits);
    expect(
      await tdb.db.selectFrom('fine_tunes').select('id').where('license_id', '=', lic.id).execute(),
    ).toEqual([]);

    // Topped up to exactly what the check asked: accepted, and the trainer reserves that very amount;
    // settlement charges the training and keeps the rest held for the evaluation.
    await tdb.db
      .transaction()
      .execute((tx) =>
        grantCredits(tx, { grantId: 'evaluated-top-up', licenseId: lic.id, amount: required - granted }),
      );
    const created = await post(`/v1/datasets/${dataset.id}/fine-tunes`, lic.key, { idempotencyKey: 'eval' });
    expect(created.status).toBe(201);
    const done = await settled(created.json.id);
    expect([done.status, done.errorMessage]).toEqual(['succeeded', null]);
    expect(done.creditsReserved).toBe(required);
    const transfers = await transfersOf(done.id);
    expect(transfers.map((t) => t.kind)).toEqual(['reserve', 'post', 'evaluation_hold']);
    expect(BigInt(transfers[2]?.amount ?? -1)).toBe(required - (done.creditsCharged ?? 0n));
    expect(BigInt(transfers[2]?.amount ?? -1)).toBeGreaterThanOrEqual(evaluation.credits);
    await expectCleanLedger();
  });
});

describe('a fine-tune request through the queue without the credits (16.2)', () => {
  it('ends insufficient_credits with the estimate, the available credits and the shortfall in its row and e-mail', async () => {
    const lic = await makeLicense(tdb.db, 'lic-queue-poor', 5n);
    const accepted = await post(
      '/v1/fine-tune-requests',
      lic.key,
      fineTuneRequest(
        'poor-1',
        { hyperparameters: { n_epochs: 4 }, notifyEmails: 'owner@poor.example' },
        true,
      ),
    );
    expect(accepted.status).toBe(202);
    const dataset = await datasetOf(lic.id, 'uploaded');
    const fineTune = await waitFor(
      async () =>
        tdb.db.selectFrom('fine_tunes').select('id').where('license_id', '=', lic.id).executeTakeFirst(),
      30_000,
      'the auto-train fine-tune',
    );
    const done = await settled(fineTune.id);
    expect(done.status).toBe('insufficient_credits');
    expect(done.errorCode).toBe('insufficient_credits');
    const estimate = dataset.estimatedCredits ?? 0n;
    expect(dataset.epochs).toBe(4);
    const required = reservationAmount(estimate, MARGIN);
    const reason =
      `Insufficient credits: this fine-tune needs ${required} credits (estimate ${estimate} + ${MARGIN}% margin), ` +
      `the license has 5 available, a shortfall of ${required - 5n} credits.`;
    expect(done.errorMessage).toBe(reason);
    const mail = await waitFor(
      async () => smtp.received.find((m) => m.to.includes('owner@poor.example')),
      15_000,
      'the e-mail',
    );
    // The e-mail is plain text with an HTML alternative: the text part says it.
    expect(mimeParts(mail.raw)['text/plain']).toContain(reason);
    expect(await transfersOf(done.id)).toEqual([]);
    await expectCleanLedger();
  });
});

describe('a license blocked by an unpaid overage (16.2)', () => {
  it('is refused at once with 402 overage_blocked and the amounts, whatever it asks for', async () => {
    const lic = await makeLicense(tdb.db, 'lic-blocked', 50n);
    // A settled fine-tune whose charge (26,666 tokens: 80 credits) ran past its reservation (50) and the
    // balance: the ledger's post of the whole reservation plus a 30-credit overage, as billing writes it.
    const datasetId0 = await makeDataset(tdb.db, lic.id, 'uploaded');
    const charged = await makeFineTune(tdb.db, lic.id, datasetId0, {
      status: 'succeeded',
      trainedTokens: 26_666,
    });
    await tdb.db.transaction().execute(async (tx) => {
      const model = 'gpt-4o-mini-2024-07-18';
      await reserveCredits(tx, { fineTuneId: charged, licenseId: lic.id, amount: 50n, model });
      await postReservation(tx, { fineTuneId: charged, amount: 80n, tokens: 26_666n, model });
      await tx
        .updateTable('fine_tunes')
        .set({ credits_reserved: 50, credits_charged: 80 })
        .where('id', '=', charged)
        .execute();
    });
    expect(await getBalance(tdb.db, lic.id)).toMatchObject({ available: -30n, overageBlocked: true });
    await expectCleanLedger();

    const datasetId = await makeDataset(tdb.db, lic.id, 'uploaded');
    const dataset = await findDataset(tdb.db, datasetId);
    const training = dataset?.estimatedCredits ?? 0n;
    // The fixture's dataset has a testing file (12 examples): its evaluation is in the estimate.
    const evaluation = estimateEvaluation({
      baseModel: dataset?.baseModel ?? '',
      testExamples: dataset?.testExamples ?? 0,
      testTokens: dataset?.testTokens ?? 0n,
    }).credits;
    expect(evaluation).toBeGreaterThan(0n);
    const estimate = training + evaluation;
    const required = reservationAmount(estimate, MARGIN);
    const refused = await post(`/v1/datasets/${datasetId}/fine-tunes`, lic.key, {});
    expect(refused.status).toBe(402);
    expect(refused.json.error).toEqual({
      message:
        `Insufficient credits (blocked by an unpaid overage until topped up): this fine-tune needs ${required} ` +
        `credits (estimate ${estimate} = training ${training} + evaluation ${evaluation}, plus ${MARGIN}% margin), ` +
        `the license has -30 available, a shortfall of ${required + 30n} credits.`,
      code: 'overage_blocked',
      credits: {
        estimate: estimate.toString(),
        training: training.toString(),
        evaluation: evaluation.toString(),
        evaluationExamples: 12,
        evaluationModels: 3,
        marginPercent: MARGIN,
        required: required.toString(),
        available: '-30',
        shortfall: (required + 30n).toString(),
      },
    });
    const rows = await tdb.db
      .selectFrom('fine_tunes')
      .select('id')
      .where('dataset_id', '=', datasetId)
      .execute();
    expect(rows).toEqual([]);
    await expectCleanLedger();
  });
});

describe('the estimate and the check (pure)', () => {
  const dataset = { trainExamples: 60, epochs: 3, estimatedBilledTokens: 30_000n, estimatedCredits: 90n };
  it("keeps the dataset's estimate for its own epochs and scales one pass for others", () => {
    const at = (hyperparameters: Parameters<typeof fineTuneEstimate>[1]['hyperparameters']) =>
      fineTuneEstimate(dataset, { hyperparameters, creditsPerMillionTokens: 3_000n });
    expect(at(undefined)).toEqual({ epochs: 3, billedTokens: 30_000n, credits: 90n });
    expect(at({ n_epochs: 3, batch_size: 8 })).toEqual({ epochs: 3, billedTokens: 30_000n, credits: 90n });
    expect(at({ n_epochs: 10 })).toEqual({ epochs: 10, billedTokens: 100_000n, credits: 300n });
    expect(at({ n_epochs: 1 })).toEqual({ epochs: 1, billedTokens: 10_000n, credits: 30n });
    expect(
      fineTuneEstimate(
        { ...dataset, epochs: null },
        { hyperparameters: undefined, creditsPerMillionTokens: 1n },
      ),
    ).toBe(null);
  });

  it('refuses what the reservation would refuse, an overage block whatever the balance', () => {
    expect(creditShortfall(100n, 10, { available: 110n, overageBlocked: false })).toBeNull();
    expect(creditShortfall(100n, 10, { available: 109n, overageBlocked: false })).toMatchObject({
      reason: 'insufficient_credits',
      required: 110n,
      shortfall: 1n,
    });
    expect(creditShortfall(100n, 10, { available: -6n, overageBlocked: true })).toMatchObject({
      reason: 'overage_blocked',
      shortfall: 116n,
    });
  });

  it('reserves training and evaluation together and names both parts', () => {
    const parts = { training: 100n, evaluation: 20n };
    expect(creditShortfall(parts, 10, { available: 132n, overageBlocked: false })).toBeNull();
    const short = creditShortfall(parts, 10, { available: 131n, overageBlocked: false });
    expect(short).toMatchObject({ estimate: 120n, parts, required: 132n, shortfall: 1n });
    expect(insufficientCreditsMessage(short!)).toBe(
      'Insufficient credits: this fine-tune needs 132 credits (estimate 120 = training 100 + evaluation 20, ' +
        'plus 10% margin), the license has 131 available, a shortfall of 1 credits.',
    );
    // No evaluation: the sentence is the training's, as before.
    const trainingOnly = creditShortfall({ training: 100n, evaluation: 0n }, 10, {
      available: 0n,
      overageBlocked: false,
    });
    expect(insufficientCreditsMessage(trainingOnly!)).toContain('(estimate 100 + 10% margin)');
  });
});
