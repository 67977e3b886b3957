import {
  createEvaluationRun,
  finishEvaluationRun,
  getFineTune,
  insertEvaluationAnswer,
  listEvaluationAnswers,
  startEvaluationRun,
} from '@tuneline/db';
import { prepareEvaluation, scoreAnswer, summariseStoredAnswers } from '@tuneline/evaluation';
import { answerRecord } from '@tuneline/evaluator';
import { chargeEvaluationRun } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from '../api/fixtures.ts';
import { demoSplit } from '../evaluation/invoice-examples.ts';
import { it, test } from '../support/hub.ts';

// The evaluation as users see it: GET /v1/fine-tunes/:id/evaluation (JSON with paging, CSV), the
// dataset grid's evaluation estimate, and the hub's evaluation panel in Chromium. The run is written
// through the repositories and scored by @tuneline/evaluation, as the evaluator writes it.

let base: string;
let key: string;
let fineTuneId: string;
let plainDatasetId: string;
const BASE = 'gpt-4o-mini-2024-07-18';

/** The base model's answer: right keys, but the total as text with a comma and no due date. */
function baseAnswer(expected: string): string {
  const e = JSON.parse(expected) as Record<string, unknown>;
  return JSON.stringify({ ...e, totalAmount: 'EUR 1,00', dueDate: undefined });
}

test.beforeAll(async ({ db, hub }) => {
  base = hub.url;
  const license = await makeLicense(db, 'lic-evalapi', 50_000n);
  key = license.key;
  const datasetId = await makeDataset(db, license.id, 'uploaded');
  fineTuneId = await makeFineTune(db, license.id, datasetId, { status: 'succeeded', available: true });
  const ft = await getFineTune(db, fineTuneId);
  const model = ft?.fineTunedModel ?? '';

  // The run: the demo's 12 testing invoices; the fine-tuned model answers all but example 0's total right.
  const examples = demoSplit().test;
  const { examples: prepared } = prepareEvaluation(
    examples.map((e) => ({ id: e.id, expected: e.assistant })),
  );
  await createEvaluationRun(db, {
    fineTuneId,
    licenseId: license.id,
    correlationId: 'corr-evalapi',
    maxExamples: 200,
  });
  const run = await startEvaluationRun(db, fineTuneId, {
    models: { fine_tuned: model, base: BASE, champion: null },
    championFineTuneId: null,
    examplesTotal: examples.length,
    exampleIds: examples.map((e) => e.id),
    deadlineAt: new Date(Date.now() + 60_000),
  });
  for (const [position, e] of examples.entries()) {
    const answers = {
      fine_tuned:
        position === 0 ? JSON.stringify({ ...JSON.parse(e.assistant), totalAmount: 1.5 }) : e.assistant,
      base: baseAnswer(e.assistant),
    };
    for (const role of ['fine_tuned', 'base'] as const) {
      const name = role === 'base' ? BASE : model;
      const scored = scoreAnswer(prepared.get(e.id)!, name, answers[role]);
      await insertEvaluationAnswer(db, {
        runId: run!.id,
        ...answerRecord(
          {
            role,
            position,
            exampleId: e.id,
            model: name,
            answer: answers[role],
            promptTokens: 400,
            completionTokens: 60,
            credits: 1n,
          },
          scored,
        ),
      });
    }
  }
  const summary = summariseStoredAnswers(
    { fine_tuned: model, base: BASE, champion: null },
    await listEvaluationAnswers(db, run!.id),
  );
  // Ended and charged once, as the evaluator's end does (no hold here: the charge is posted on its own).
  await db.transaction().execute(async (tx) => {
    await finishEvaluationRun(tx, fineTuneId, { status: 'succeeded', summary });
    await chargeEvaluationRun(tx, { runId: run!.id, fineTuneId, licenseId: license.id, model: BASE });
  });

  // A dataset without a testing file.
  plainDatasetId = await makeDataset(db, license.id, 'ready');
  await db
    .updateTable('datasets')
    .set({ test_percent: 0, test_examples: 0, test_tokens: 0, test_path: null })
    .where('id', '=', plainDatasetId)
    .execute();
}, 60_000);

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
const json = async (res: Response): Promise<any> => res.json();

describe('GET /v1/fine-tunes/:id/evaluation', () => {
  it('gives the table, the verdict and the answers page by page', async () => {
    const res = await get(`/v1/fine-tunes/${fineTuneId}/evaluation?limit=10`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.status).toBe('succeeded');
    expect(body.examplesEvaluated).toBe(12);
    expect(body.charged).toEqual({ credits: '24', tokens: String(24 * 460) });
    const total = body.table.rows.find((r: { label: string }) => r.label === 'totalAmount');
    expect(total.fineTuned.k).toBe(11);
    expect(total.base.k).toBe(0);
    expect(total.deltaBase).toBeCloseTo(11 / 12);
    expect(body.table.verdictBase).toMatch(/^better at n = \d+ \(exact McNemar p/);
    expect(body.rows).toHaveLength(10);
    expect(body.page).toEqual({ offset: 0, limit: 10, total: 24, nextOffset: 10 });
    const rest = await json(await get(`/v1/fine-tunes/${fineTuneId}/evaluation?offset=20&limit=10`));
    expect(rest.rows).toHaveLength(4);
    expect(rest.page.nextOffset).toBeNull();
    expect(rest.rows.at(-1).exampleId).toBe(demoSplit().test.at(-1)?.id);
  });

  it('gives a CSV with one line per example, model and field', async () => {
    const res = await get(`/v1/fine-tunes/${fineTuneId}/evaluation?format=csv`);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await res.text()).trim().split('\r\n');
    expect(lines[0]).toBe('exampleId,position,role,model,field,outcome,expected,answered,validJson');
    expect(lines).toHaveLength(1 + 24 * 6);
    expect(lines.filter((l) => l.includes(',fine_tuned,') && l.includes(',wrong,'))).toHaveLength(1);
  });

  it('says why there is none, and the dataset grid states the evaluation estimate or its absence', async ({
    db,
  }) => {
    const other = await makeFineTune(db, 'lic-evalapi', plainDatasetId, { status: 'succeeded' });
    const none = await json(await get(`/v1/fine-tunes/${other}/evaluation`));
    expect(none.status).toBe('none');
    expect(none.reason).toBe('no testing file (testPercent 0): no evaluation');
    const { data } = await json(await get('/v1/datasets'));
    const plain = data.find((d: { id: string }) => d.id === plainDatasetId);
    expect(plain.evaluationEstimate).toMatchObject({ evaluated: false, credits: '0' });
    const withTest = data.find((d: { id: string }) => d.id !== plainDatasetId);
    // 12 testing examples × 3 models × 500 tokens (6,000 / 12), priced as inference.
    expect(withTest.evaluationEstimate).toMatchObject({
      evaluated: true,
      examples: 12,
      models: 3,
      tokens: '18000',
    });
    expect(Number(withTest.evaluationEstimate.credits)).toBeGreaterThan(0);
    expect((await get(`/v1/fine-tunes/${other}/evaluation`, { authorization: 'Bearer nope' })).status).toBe(
      401,
    );
  });
});

describe('hub evaluation panel', () => {
  it('shows the table, the verdict and a failing example side by side', async ({ browser }) => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/hub#fine-tune=${fineTuneId}`);
      await page.fill('#license-key', key);
      await page.click('#sign-in-form button[type=submit]');
      await page.waitForSelector('#evaluation-table');
      // The datasets grid states the evaluation estimate, or that there is none.
      const estimates = await page.locator('#datasets [data-testid="evaluation-estimate"]').allTextContents();
      expect(estimates).toContain('no testing file (testPercent 0): no evaluation');
      expect(estimates.some((e) => /^12 examples × 3 models × ~500 tokens ≈ \d+ credits/.test(e))).toBe(true);
      const total = await page.locator('#evaluation-table tr[data-field="totalAmount"] td').allTextContents();
      expect(total[0]).toBe('0.0%');
      expect(total[1]).toMatch(/^91\.7% \[/);
      expect(total[2]).toBe('+91.7 pt');
      expect(await page.locator('#evaluation-verdicts').textContent()).toContain('better at n =');
      const failing = page.locator(
        `#evaluation-failing table[data-example="${demoSplit().test[0]?.id}"] tbody tr`,
      );
      expect(await failing.count()).toBe(1);
      const cells = await failing.first().locator('th, td').allTextContents();
      expect(cells[0]).toBe('totalAmount');
      expect(cells[2]).toBe('1.5');
      expect(cells[3]).toBe('wrong');
    } finally {
      await page.close();
    }
  });
});
