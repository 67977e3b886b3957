import { fineTuneRequestMessage } from '@tuneline/contracts';
import {
  type FineTuneRow,
  getEvaluationRunByFineTune,
  listEvaluationAnswers,
  setFineTuneActive,
} from '@tuneline/db';
import { syntheticInvoices } from '@tuneline/devstack';
import type { EvaluationSummary } from '@tuneline/evaluation';
import { requestSplitSeed, sampleExamples, testingDocumentIds } from '@tuneline/evaluator';
import { startSmtpServer } from '@tuneline/harness';
import { auditLedger, usageLog } from '@tuneline/ledger';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSplit } from '../evaluation/invoice-examples.ts';
import {
  type Pipeline,
  type StorageFixture,
  seedLicense,
  startOuterStages,
  startPipeline,
  tempStorage,
} from '../stages/harness.ts';
import { makeProvider } from '../stages/provider.ts';
import { createTestDatabase, redisUrl, type TestDatabase, testPrefix, waitFor } from '../support/context.ts';
import { evaluationLedger, invoiceRequest, mimeParts } from './support.ts';

let tdb: TestDatabase;
let sim: RunningSimulator;
let files: StorageFixture;
let pipeline: Pipeline;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  files = tempStorage();
  smtp = await startSmtpServer();
  sim = await startSimulator({ port: 0, seed: 18, speed: 2_000 });
  const provider = makeProvider({ baseURL: sim.url, apiKey: sim.apiKey });
  pipeline = await startPipeline({
    db: tdb.db,
    redisUrl: redisUrl(),
    prefix: testPrefix(),
    provider,
    storage: files.storage,
    schedule: { intervalMs: 300, minIntervalMs: 100 },
  });
  await startOuterStages(pipeline.runner, {
    db: tdb.db,
    storage: files.storage,
    provider,
    smtpUrl: smtp.url,
    evaluation: { timeLimitMs: 120_000, callAttempts: 4, maxTokens: 1_024 },
    publicUrl: 'https://tuneline.example.com',
  });
}, 60_000);

afterAll(async () => {
  await pipeline?.close();
  await sim?.close();
  await smtp?.close();
  files?.cleanup();
  await tdb?.drop();
});

async function submit(input: ReturnType<typeof invoiceRequest>): Promise<void> {
  const request = fineTuneRequestMessage({ request: input, correlationId: `corr-${input.requestId}` });
  await pipeline.stages.uploader?.publisher.publish(request.queue, request.jobId, request.payload);
}

async function fineTuneOf(licenseId: string, requestId: string): Promise<FineTuneRow> {
  return waitFor(
    async () =>
      tdb.db
        .selectFrom('fine_tunes as f')
        .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
        .innerJoin('fine_tune_requests as r', 'r.id', 'd.request_row_id')
        .selectAll('f')
        .where('f.license_id', '=', licenseId)
        .where('r.request_id', '=', requestId)
        .where('f.available', '=', true)
        .executeTakeFirst(),
    60_000,
    `fine-tune of ${requestId} to become available`,
  );
}

const mailTo = (address: string, fineTuneId: string) =>
  waitFor(
    async () => smtp.received.find((m) => m.to.includes(address) && m.raw.includes(fineTuneId)),
    60_000,
    `the e-mail to ${address}`,
  );

describe('fine-tune → evaluation → e-mail', () => {
  it('evaluates exactly the testing file against the base model, charges it once, then mails the table', async () => {
    await seedLicense(tdb.db, 'lic-eval', 1_000_000n);
    await submit(
      invoiceRequest({
        requestId: 'eval-1',
        licenseId: 'lic-eval',
        job: {
          description: 'evaluated',
          notifyEmails: 'owner@example.com',
          hyperparameters: { n_epochs: 3 },
        },
      }),
    );
    const ft = await fineTuneOf('lic-eval', 'eval-1');
    const mail = await mailTo('owner@example.com', ft.id);

    // The run: succeeded, the fine-tuned and base models, no champion (the license had none).
    const run = await getEvaluationRunByFineTune(tdb.db, ft.id);
    expect(run?.status).toBe('succeeded');
    expect(run?.models).toEqual({ fine_tuned: ft.fine_tuned_model, base: ft.base_model, champion: null });
    const testIds = demoSplit().test.map((e) => e.id);
    expect(run?.exampleIds).toEqual(testIds);

    // Every example of the testing file asked of each model once, no other.
    const answers = await listEvaluationAnswers(tdb.db, run?.id ?? '');
    expect(answers).toHaveLength(testIds.length * 2);
    for (const role of ['fine_tuned', 'base'] as const) {
      expect(answers.filter((a) => a.role === role).map((a) => a.exampleId)).toEqual(testIds);
    }

    // The learned model beats the generic extractor, and the summary says so.
    const summary = run?.summary as EvaluationSummary;
    const [vsBase] = summary.report.comparisons;
    expect(vsBase?.verdict).toBe('better');
    expect(vsBase?.n).toBe(testIds.length * 6);

    // Charged through the ledger as `evaluation`, once for the run: the sum of the reported usage, taken
    // from what the trainer's reservation kept held (it included the evaluation estimate), the rest released.
    const ledger = await evaluationLedger(tdb.db, ft.id);
    expect(ledger.count).toBe(1);
    expect(ledger.credits).toBe(answers.reduce((s, a) => s + a.credits, 0n));
    expect(ledger.tokens).toBe(BigInt(answers.reduce((s, a) => s + a.promptTokens + a.completionTokens, 0)));
    const transfers = await tdb.db
      .selectFrom('ledger_transfers')
      .select(['kind', 'amount'])
      .where('fine_tune_id', '=', ft.id)
      .orderBy('seq')
      .execute();
    expect(transfers.map((t) => t.kind)).toEqual(['reserve', 'post', 'evaluation_hold', 'evaluation']);
    const held = BigInt(transfers[2]?.amount ?? 0);
    expect(held).toBe(BigInt(transfers[0]?.amount ?? 0) - BigInt(transfers[1]?.amount ?? 0));
    expect(ledger.credits).toBeLessThanOrEqual(held);
    const log = (await usageLog(tdb.db, 'lic-eval')).filter((e) => e.fineTuneId === ft.id);
    expect(log.map((e) => e.kind)).toEqual(['reservation', 'charge', 'evaluation', 'release']);
    expect((await auditLedger(tdb.db)).violations).toEqual([]);

    // The e-mail: plain text with the table and the verdict, an HTML alternative with the same, a hub link.
    expect(mail.headers['content-type']).toMatch(/multipart\/alternative/);
    const parts = mimeParts(mail.raw);
    const text = parts['text/plain'] ?? '';
    const html = parts['text/html'] ?? '';
    expect(text).toContain('Evaluation on the testing file');
    expect(text).toMatch(/invoiceNumber\s+\S+%/);
    expect(text).toContain('Verdict against the base model: better at n = 72');
    expect(text).toContain(`https://tuneline.example.com/hub/#fine-tune=${ft.id}`);
    expect(html).toContain('<table');
    expect(html).toContain('<th scope="row" style="text-align:left">totalAmount</th>');
    expect(html).toContain(`href="https://tuneline.example.com/hub/#fine-tune=${ft.id}"`);
  }, 120_000);

  it("compares with the license's active model for the configuration and evaluates the capped sample", async () => {
    const first = await fineTuneOf('lic-eval', 'eval-1');
    await setFineTuneActive(tdb.db, { id: first.id, licenseId: 'lic-eval', active: true });
    const input = invoiceRequest({
      requestId: 'eval-2',
      licenseId: 'lic-eval',
      documents: syntheticInvoices({ count: 80, seed: 7, idPrefix: 'b' }),
      job: {
        description: 'challenger',
        notifyEmails: 'owner@example.com',
        hyperparameters: 'auto',
        evaluation: { maxExamples: 5 },
      },
    });
    await submit(input);
    const ft = await fineTuneOf('lic-eval', 'eval-2');
    const mail = await mailTo('owner@example.com', ft.id);
    const run = await getEvaluationRunByFineTune(tdb.db, ft.id);
    expect(run?.status).toBe('succeeded');
    expect(run?.models?.champion).toBe(first.fine_tuned_model);
    expect(run?.championFineTuneId).toBe(first.id);
    expect(run?.examplesTotal).toBe(16);

    // The sample: 5 of the 16 testing documents, the ones the split seed ranks first (same request, same ones).
    const allIds = testingDocumentIds(input, 16) ?? [];
    expect(allIds).toHaveLength(16);
    const expected = sampleExamples(
      allIds.map((id, position) => ({ id, position })),
      5,
      requestSplitSeed(input) ?? '',
    ).map((e) => e.id);
    expect(run?.exampleIds).toEqual(expected);
    const answers = await listEvaluationAnswers(tdb.db, run?.id ?? '');
    expect(answers).toHaveLength(15);
    for (const role of ['fine_tuned', 'base', 'champion'] as const) {
      expect(answers.filter((a) => a.role === role).map((a) => a.exampleId)).toEqual(expected);
    }
    const text = mimeParts(mail.raw)['text/plain'] ?? '';
    expect(text).toContain('Verdict against the champion:');
    expect(text).toMatch(/field\s+base\s+champion\s+fine-tuned/);
    expect((await auditLedger(tdb.db)).violations).toEqual([]);
  }, 120_000);

  it('with testPercent 0 there is no evaluation, and the e-mail says why', async () => {
    await submit(
      invoiceRequest({
        requestId: 'eval-3',
        licenseId: 'lic-eval',
        testPercent: 0,
        job: { description: 'no test file', notifyEmails: 'plain@example.com', hyperparameters: 'auto' },
      }),
    );
    const ft = await fineTuneOf('lic-eval', 'eval-3');
    const mail = await mailTo('plain@example.com', ft.id);
    expect(await getEvaluationRunByFineTune(tdb.db, ft.id)).toBeUndefined();
    expect(mimeParts(mail.raw)['text/plain']).toContain(
      'No evaluation: the dataset has no testing file (testPercent 0).',
    );
    expect((await evaluationLedger(tdb.db, ft.id)).count).toBe(0);
  }, 120_000);
});
