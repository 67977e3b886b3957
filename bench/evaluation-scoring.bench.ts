// Scoring CPU of an evaluation, with baselines measured in the same run:
// 1. Answers: a model fine-tuned on the demo's 48 training invoices, a weaker one (24 examples, one
//    epoch, as a "champion") and the base model answer EVAL_BENCH_DOCS held-out invoices (default 1,000)
//    through the `openai` SDK from the simulator, 8 calls at a time: the chat calls an evaluation makes.
// 2. Scoring: scoreAnswers (field specs, each expected answer read once, every answer parsed and its six
//    fields compared) plus the report (summaries, Wilson intervals, two McNemar comparisons) over those
//    answers, in answers/s of this process's CPU time, against bare JSON.parse of the same answers
//    (what any scorer must do at least). Printed, no target.
// 3. Scoring's share of the run: scoring CPU for the answers ÷ the wall time the chat calls took to get
//    them from the simulator, the fastest provider there is. Target: under 5% (issue 18).

import { invoiceModelConfig } from '@tuneline/devstack';
import { type ModelAnswer, report, scoreAnswers } from '@tuneline/evaluation';
import { startSimulator } from '@tuneline/simulator';
import {
  BASE_MODEL as BASE,
  demoSplit,
  heldOutInvoices,
  type InvoiceExample,
  trainingJsonl,
} from '../test/evaluation/invoice-examples.ts';
import { sdkClient, uploadTrainingFile } from '../test/simulator/support.ts';

const DOCS = Number(process.env.EVAL_BENCH_DOCS ?? 1_000);
const ROUNDS = 5;
const CONCURRENCY = 8;
const TARGET_SHARE = 0.05;

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const { training } = demoSplit();
  const heldOut = heldOutInvoices(DOCS, 4242, 'bench');

  const sim = await startSimulator({ seed: 1, speed: 100_000 });
  const client = sdkClient(sim);
  try {
    const fineTune = async (examples: InvoiceExample[], epochs: number | 'auto') => {
      const job = await client.fineTuning.jobs.create({
        model: BASE,
        training_file: await uploadTrainingFile(client, trainingJsonl(examples), 'train.jsonl'),
        seed: 7,
        method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: epochs } } },
      });
      for (;;) {
        const j = await client.fineTuning.jobs.retrieve(job.id);
        if (j.status === 'succeeded') return j.fine_tuned_model!;
        if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`bench job ${j.status}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const models = {
      tuned: await fineTune(training, 'auto'),
      champion: await fineTune(training.slice(0, 24), 1),
      base: BASE,
    };

    // 1. The chat calls (one warm-up call per model first: the fine-tuned ones learn at their first call).
    const answers: ModelAnswer[] = [];
    const ask = (model: string, user: string) =>
      client.chat.completions.create({
        model,
        messages: [
          { role: 'system', content: invoiceModelConfig.systemPrompt },
          { role: 'user', content: user },
        ],
      });
    for (const model of Object.values(models)) await ask(model, training[0]!.user);
    const work = Object.entries(models).flatMap(([name, model]) => heldOut.map((e) => ({ name, model, e })));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < work.length) {
          const w = work[next++]!;
          const res = await ask(w.model, w.e.user);
          answers.push({ model: w.name, exampleId: w.e.id, answer: res.choices[0]!.message.content ?? '' });
        }
      }),
    );
    const chatWallMs = performance.now() - started;

    // 2. Scoring against bare JSON.parse, alternating, after a warm-up of both.
    const examples = heldOut.map((e) => ({ id: e.id, expected: e.assistant }));
    const texts = answers.map((a) => a.answer);
    const bare = () => {
      let parsed = 0;
      for (const t of texts) {
        try {
          JSON.parse(t);
          parsed++;
        } catch {}
      }
      return parsed;
    };
    const score = () => {
      const rows = scoreAnswers(examples, answers, { fields: invoiceModelConfig.mappedFields });
      return { rows, report: report(rows, 'tuned', ['champion', 'base']) };
    };
    score();
    bare();
    const bareMs: number[] = [];
    const scoreMs: number[] = [];
    let result = score();
    for (let r = 0; r < ROUNDS; r++) {
      let t = process.cpuUsage();
      for (let k = 0; k < 10; k++) bare();
      bareMs.push(cpuMs(t) / 10);
      t = process.cpuUsage();
      result = score();
      scoreMs.push(cpuMs(t));
    }
    const scoring = median(scoreMs);
    const parsing = median(bareMs);
    const n = answers.length;
    const scoreRate = n / (scoring / 1000);
    const parseRate = n / (parsing / 1000);
    console.log(
      `evaluation scoring: ${fmt(DOCS)} held-out invoices × 3 models = ${fmt(n)} answers, ${result.rows.fieldRows.length} field outcomes`,
    );
    console.log(
      `scoring   ${fmt(scoreRate)} answers/s (${fmt((scoring * 1000) / n, 1)} µs CPU each, report included)   bare JSON.parse ${fmt(parseRate)} answers/s (${fmt((parsing * 1000) / n, 1)} µs)   ratio ${(scoreRate / parseRate).toFixed(2)}   (median of ${ROUNDS}; rounds ${scoreMs.map((m) => fmt(m, 1)).join(', ')} ms)`,
    );
    const share = scoring / chatWallMs;
    console.log(
      `share     scoring ${fmt(scoring, 1)} ms CPU against ${fmt(chatWallMs)} ms of chat calls to the simulator (${fmt(n / (chatWallMs / 1000))} answers/s, ${CONCURRENCY} at a time): ${(share * 100).toFixed(2)}% (target < ${TARGET_SHARE * 100}%) ${share < TARGET_SHARE ? 'ok' : 'TARGET MISSED'}`,
    );
    for (const m of result.report.models) {
      const p = m.fieldAccuracy;
      console.log(
        `          ${m.model.padEnd(8)} field accuracy ${((p.rate ?? 0) * 100).toFixed(1)}% [${(p.low * 100).toFixed(1)}, ${(p.high * 100).toFixed(1)}], valid JSON ${((m.validJson.rate ?? 0) * 100).toFixed(1)}%`,
      );
    }
    for (const c of result.report.comparisons) console.log(`          ${c.line}`);
  } finally {
    await sim.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
