// The simulator's models can be evaluated: a fine-tuned model learns from its training file alone, gets
// better with training examples and epochs, and beats the generic base model on invoices it never saw.
// Everything goes through the official SDK over HTTP; answers are scored with the evaluation library.
import { invoiceModelConfig } from '@tuneline/devstack';
import { compareModels, type ScoredRows, scoreAnswers, summarise } from '@tuneline/evaluation';
import { BASE_INVALID_JSON_RATE, startSimulator } from '@tuneline/simulator';
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  BASE_MODEL as BASE,
  demoSplit,
  type InvoiceExample as Example,
  heldOutInvoices,
  trainingJsonl,
} from '../evaluation/invoice-examples.ts';
import { sdkClient, simulatorForFile, uploadTrainingFile, waitForJob } from './support.ts';

// The demo's documents and split: 60 invoices, 20% held out → 48 training examples, 12 test examples.
const { training, test: demoTest } = demoSplit();
// More documents the training file never contained, for tighter intervals.
const heldOut = heldOutInvoices(200, 77, 'held');

const sim = simulatorForFile({ seed: 11, speed: 100_000 });

const upload = (c: OpenAI, examples: Example[]) =>
  uploadTrainingFile(c, trainingJsonl(examples), 'train.jsonl');

async function fineTune(
  examples: Example[],
  opts: { epochs?: number; seed: number; validation?: Example[]; c?: OpenAI },
): Promise<string> {
  const c = opts.c ?? sim.client;
  const job = await c.fineTuning.jobs.create({
    model: BASE,
    training_file: await upload(c, examples),
    validation_file: opts.validation ? await upload(c, opts.validation) : undefined,
    seed: opts.seed,
    method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: opts.epochs ?? 'auto' } } },
  });
  const done = await waitForJob(c, job.id);
  expect(done.status, done.error?.message).toBe('succeeded');
  return done.fine_tuned_model!;
}

/** The model's answers to the examples, eight calls at a time. */
async function answers(model: string, examples: Example[], c = sim.client): Promise<string[]> {
  const out: string[] = new Array(examples.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < examples.length) {
        const i = next++;
        const res = await c.chat.completions.create({
          model,
          messages: [
            { role: 'system', content: invoiceModelConfig.systemPrompt },
            { role: 'user', content: examples[i]!.user },
          ],
        });
        out[i] = res.choices[0]!.message.content ?? '';
      }
    }),
  );
  return out;
}

async function evaluate(models: Record<string, string>, examples: Example[]): Promise<ScoredRows> {
  const all = [];
  for (const [name, model] of Object.entries(models)) {
    const got = await answers(model, examples);
    all.push(...examples.map((e, i) => ({ model: name, exampleId: e.id, answer: got[i]! })));
  }
  return scoreAnswers(
    examples.map((e) => ({ id: e.id, expected: e.assistant })),
    all,
    { fields: invoiceModelConfig.mappedFields },
  );
}

const accuracy = (rows: ScoredRows, model: string) =>
  summarise(rows.exampleRows, rows.fieldRows).find((m) => m.model === model)!.fieldAccuracy.rate!;

describe('a fine-tuned model learns from its training file', { timeout: 120_000 }, () => {
  it('is measured on held-out documents only: none of them is in the training file', () => {
    const trained = new Set(training.map((e) => e.user));
    expect(training).toHaveLength(48);
    expect(demoTest).toHaveLength(12);
    expect([...demoTest, ...heldOut].filter((e) => trained.has(e.user))).toEqual([]);
  });

  it('beats the base model by a wide margin on invoices it never saw (48 examples, auto epochs)', async () => {
    const tuned = await fineTune(training, { seed: 5 });
    const rows = await evaluate({ tuned, base: BASE }, heldOut);
    const [tunedAcc, baseAcc] = [accuracy(rows, 'tuned'), accuracy(rows, 'base')];
    expect(tunedAcc).toBeGreaterThan(0.85);
    expect(baseAcc).toBeLessThan(0.55);
    expect(tunedAcc - baseAcc).toBeGreaterThan(0.35);
    expect(compareModels(rows.fieldRows, 'tuned', 'base').verdict).toBe('better');
    // The demo's own 12 test documents say the same, with wider intervals.
    const demo = await evaluate({ tuned, base: BASE }, demoTest);
    expect(compareModels(demo.fieldRows, 'tuned', 'base').line).toMatch(/^better at n = 72: /);
  });

  it('gets better with more training examples and with more epochs', async () => {
    const runs = ['10x1', '24x1', '48x1', '48x2', '48x3'];
    const models: Record<string, string> = {};
    for (const run of runs) {
      const [n, epochs] = run.split('x').map(Number) as [number, number];
      models[run] = await fineTune(training.slice(0, n), { epochs, seed: 5 });
    }
    const rows = await evaluate(models, heldOut);
    const acc = runs.map((run) => accuracy(rows, run));
    // More examples at one epoch: 10 < 24 < 48; more epochs on 48 examples: 1 < 2 < 3.
    for (let i = 1; i < runs.length; i++)
      expect(acc[i - 1], `${runs[i - 1]} < ${runs[i]}`).toBeLessThan(acc[i]!);
    // Not by a hair: each step of three is significant on the paired outcomes.
    expect(compareModels(rows.fieldRows, '48x1', '10x1').verdict).toBe('better');
    expect(compareModels(rows.fieldRows, '48x3', '48x1').verdict).toBe('better');
  });

  it('never reads the testing file: a validation file with wrong answers changes nothing', async () => {
    const wrong = heldOut
      .slice(0, 40)
      .map((e) => ({ ...e, assistant: JSON.stringify({ invoiceNumber: 'X', totalAmount: 0 }) }));
    const without = await fineTune(training.slice(0, 24), { epochs: 2, seed: 8 });
    const withTesting = await fineTune(training.slice(0, 24), { epochs: 2, seed: 8, validation: wrong });
    expect(await answers(withTesting, heldOut)).toEqual(await answers(without, heldOut));
  });

  it('is deterministic by seed, and learned again the same after a simulator restart', async () => {
    const a = await fineTune(training.slice(0, 24), { epochs: 1, seed: 21 });
    const b = await fineTune(training.slice(0, 24), { epochs: 1, seed: 21 });
    const other = await fineTune(training.slice(0, 24), { epochs: 1, seed: 22 });
    const first = await answers(a, heldOut);
    expect(await answers(b, heldOut)).toEqual(first);
    // At little training, another seed learns other rules: some answers differ.
    const third = await answers(other, heldOut);
    expect(third.filter((t, i) => t !== first[i]).length).toBeGreaterThan(0);
    // The simulator keeps its state in memory: a restarted one is trained again from the same file and
    // seed, and its model answers exactly as before (learned at its first call, from its job alone).
    const restarted = await startSimulator({ seed: 11, speed: 100_000 });
    try {
      const c = sdkClient(restarted);
      const again = await fineTune(training.slice(0, 24), { epochs: 1, seed: 21, c });
      expect(await answers(again, heldOut, c)).toEqual(first);
      expect(await answers(BASE, heldOut, c)).toEqual(await answers(BASE, heldOut));
    } finally {
      await restarted.close();
    }
  });

  it('answers like its nearest training example when the training answers are not JSON', async () => {
    const plain = training.slice(0, 12).map((e, i) => ({ ...e, assistant: `category ${i % 3}` }));
    const model = await fineTune(plain, { epochs: 1, seed: 1 });
    const near = `${plain[4]!.user}\nstamp: received`;
    const res = await sim.client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: near }],
    });
    expect(res.choices[0]!.message.content).toBe(plain[4]!.assistant);
  });
});

describe('the base model', { timeout: 120_000 }, () => {
  const docs = heldOutInvoices(1000, 5150, 'rate');

  it(`answers invalid JSON at the documented rate (${BASE_INVALID_JSON_RATE * 100}%), the same for the same seed`, async () => {
    const invalid = (list: string[]) =>
      list.filter((a) => {
        try {
          JSON.parse(a);
          return false;
        } catch {
          return true;
        }
      }).length;
    const got = await answers(BASE, docs);
    const count = invalid(got);
    // Binomial(1000, 0.03): mean 30, standard deviation 5.4; this allows ±3.3 of them.
    expect(count).toBeGreaterThanOrEqual(12);
    expect(count).toBeLessThanOrEqual(48);
    // The same seed cuts the same answers; another seed others.
    const sample = docs.slice(0, 200);
    expect(await answers(BASE, sample)).toEqual(got.slice(0, 200));
    const other = await startSimulator({ seed: 12, speed: 100_000 });
    try {
      const c = sdkClient(other);
      const otherAnswers = await answers(BASE, sample, c);
      expect(otherAnswers.filter((a, i) => a !== got[i]).length).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });

  it('answers with the keys the system prompt lists, some right, some wrongly named or formatted', async () => {
    const got = (await answers(BASE, heldOut.slice(0, 60))).map((a) => {
      try {
        return JSON.parse(a) as Record<string, unknown>;
      } catch {
        return null;
      }
    });
    const keys = new Set(got.flatMap((a) => (a ? Object.keys(a) : [])));
    expect(keys).toContain('invoiceNumber');
    expect(keys).toContain('currency');
    expect(keys).toContain('invoice_number'); // now and then snake_case instead of the names asked for
    // Dates and amounts copied as the document writes them, not as the prompt asks.
    expect(
      got.some((a) => typeof a?.invoiceDate === 'string' && !/^\d{4}-\d\d-\d\d$/.test(a.invoiceDate)),
    ).toBe(true);
    expect(got.some((a) => typeof a?.totalAmount === 'string')).toBe(true);
  });
});
