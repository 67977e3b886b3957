// The evaluator stage's throughput against bare chat calls, in the same run (issue 18):
// - Stage: evaluateFineTune (services/evaluator) over a testing file of EVAL_STAGE_DOCS held-out invoices
//   (default 300), each asked of the fine-tuned model and its base model through the provider profile
//   (`openai` SDK) from the simulator, EVAL_STAGE_CONCURRENCY (8) calls in flight; every answer scored and
//   stored (Postgres, in batches behind the calls), the run charged once and summarised at the end.
// - Baseline: the same calls (same models, messages, max tokens, temperature) through the SDK to the same
//   simulator at the same concurrency, answers thrown away.
// Rounds alternate (baseline, stage, …), the first pair a warm-up left out; EVAL_STAGE_ROUNDS (6) pairs
// after it. On a shared machine whose load swings within seconds, the figure is the median of the PAIRED
// ratios (each stage round against the baseline round just before it, which met about the same load); the
// ratio of the medians and of the best rounds are printed beside it. Targets: stage rate ≥ 0.8 × baseline;
// scoring (answers and summary, timed inside the stage) under 5% of the stage's wall time.
// CPU, less disturbed by the load than wall time: this process's (simulator, SDK and stage together) per
// round, and the Postgres backends' serving the scratch database (from /proc, Linux) per stage round.
// (evaluation-scoring.bench.ts measures scoring's CPU per answer against bare JSON.parse.)

import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFileStorage } from '@tuneline/dataset';
import { createEvaluationRun, type Db } from '@tuneline/db';
import { invoiceModelConfig } from '@tuneline/devstack';
import { evaluateFineTune } from '@tuneline/evaluator';
import { grantCredits } from '@tuneline/ledger';
import { createProviderProfile } from '@tuneline/provider';
import { createLogger } from '@tuneline/runtime';
import { startSimulator } from '@tuneline/simulator';
import OpenAI, { toFile } from 'openai';
import {
  BASE_MODEL as BASE,
  demoSplit,
  heldOutInvoices,
  trainingJsonl,
} from '../test/evaluation/invoice-examples.ts';
import { insertDatasetRow } from '../test/support/rows.ts';
import { postgresCpuMs, requireDatabaseUrl, scratchDatabase } from './support.ts';

const DOCS = Number(process.env.EVAL_STAGE_DOCS ?? 300);
const CONCURRENCY = Number(process.env.EVAL_STAGE_CONCURRENCY ?? 8);
/** Measured pairs (baseline, stage), after one warm-up pair. */
const ROUNDS = Number(process.env.EVAL_STAGE_ROUNDS ?? 6) + 1;
/** Runs with a provider that answers at once (the stage's own cost), after one warm-up. */
const OWN_ROUNDS = 5;
const MAX_TOKENS = 1_024;
const TARGET_RATIO = 0.8;
const TARGET_SHARE = 0.05;
const LICENSE = 'lic-bench-eval';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const baseUrl = requireDatabaseUrl('evaluation-stage');
  const scratch = await scratchDatabase(baseUrl, 'evalstage', CONCURRENCY + 4);
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-eval-bench-'));
  const sim = await startSimulator({ seed: 3, speed: 100_000 });
  const client = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  try {
    const db = scratch.db;
    const { training } = demoSplit();
    const tuned = await fineTune(client, trainingJsonl(training));
    const heldOut = heldOutInvoices(DOCS, 9191, 'stage');
    // The testing file, as the dataset builder writes it.
    const testJsonl = trainingJsonl(heldOut);
    mkdirSync(join(dir, 'datasets'), { recursive: true });
    writeFileSync(join(dir, 'datasets', 'test.jsonl'), testJsonl);
    const storage = new LocalFileStorage(dir);
    await db.insertInto('licenses').values({ id: LICENSE, name: LICENSE }).execute();
    await db
      .transaction()
      .execute((tx) => grantCredits(tx, { grantId: 'bench-eval', licenseId: LICENSE, amount: 100_000_000n }));
    const datasetId = await seedDataset(db);

    const calls = heldOut.flatMap((e) =>
      [tuned, BASE].map((model) => ({
        model,
        messages: [
          { role: 'system' as const, content: invoiceModelConfig.systemPrompt },
          { role: 'user' as const, content: e.user },
        ],
      })),
    );
    const warm = calls.slice(0, 2 * CONCURRENCY);
    await bare(client, warm);

    const profile = createProviderProfile({
      kind: 'simulator',
      apiKey: sim.apiKey,
      baseURL: sim.url,
      common: { webhookSecret: undefined, maxRetries: 0, timeoutMs: 30_000 },
    });
    // When the stage's first call left and its last answer came back: what is before and after is the
    // stage's own start (reading the run, the testing file, …) and end (last writes, summary, charge, e-mails).
    let firstCall = 0;
    let lastAnswer = 0;
    const provider: typeof profile = {
      ...profile,
      chatCompletion: async (input) => {
        firstCall ||= performance.now();
        const result = await profile.chatCompletion(input);
        lastAnswer = performance.now();
        return result;
      },
    };
    const log = createLogger('bench', 'silent');
    const bareMs: number[] = [];
    const stageMs: number[] = [];
    const startMs: number[] = [];
    const endMs: number[] = [];
    const scoringShares: number[] = [];
    const bareCpu: number[] = [];
    const stageCpu: number[] = [];
    const pgCpu: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let cpu = cpuMs();
      let t = performance.now();
      await bare(client, calls);
      if (round > 0) {
        bareMs.push(performance.now() - t);
        bareCpu.push(cpuMs() - cpu);
      }

      const fineTuneId = await seedFineTune(db, datasetId, tuned);
      let scoring = 0;
      const pgBefore = await postgresCpuMs(db);
      cpu = cpuMs();
      firstCall = 0;
      t = performance.now();
      const outcome = await evaluateFineTune(
        {
          db,
          log,
          provider,
          storage,
          timeLimitMs: 600_000,
          concurrency: CONCURRENCY,
          callAttempts: 3,
          maxTokens: MAX_TOKENS,
          onScored: (ms) => {
            scoring += ms;
          },
        },
        fineTuneId,
        { attempt: 1, log },
      );
      const wall = performance.now() - t;
      const stageCpuMs = cpuMs() - cpu;
      const pgAfter = await postgresCpuMs(db);
      const pgCpuMs = pgBefore === null || pgAfter === null ? Number.NaN : pgAfter - pgBefore;
      if (outcome !== 'evaluated') throw new Error(`evaluation ended ${outcome}`);
      if (round === 0) continue;
      stageMs.push(wall);
      stageCpu.push(stageCpuMs);
      startMs.push(firstCall - t);
      endMs.push(t + wall - lastAnswer);
      pgCpu.push(pgCpuMs);
      scoringShares.push(scoring / wall);
    }
    // The stage's own cost: the same evaluation with a provider that answers at once (the expected
    // answer, fixed usage), so only the stage's work is left: start, scoring, batched writes, summary,
    // the charge and the end. Less disturbed by the load than the rounds above (no simulator).
    const expectedByUser = new Map(heldOut.map((e) => [e.user, e.assistant]));
    const instant = {
      chatCompletion: async (input: { model: string; messages: { content: string }[] }) => ({
        id: 'instant',
        model: input.model,
        content: expectedByUser.get(input.messages.at(-1)?.content ?? '') ?? '{}',
        finishReason: 'stop',
        usage: { promptTokens: 400, completionTokens: 60, totalTokens: 460 },
      }),
    };
    const ownMs: number[] = [];
    const ownCpu: number[] = [];
    for (let round = 0; round < OWN_ROUNDS + 1; round++) {
      const fineTuneId = await seedFineTune(db, datasetId, tuned);
      const cpu = cpuMs();
      const t = performance.now();
      const outcome = await evaluateFineTune(
        {
          db,
          log,
          provider: instant,
          storage,
          timeLimitMs: 600_000,
          concurrency: CONCURRENCY,
          callAttempts: 3,
          maxTokens: MAX_TOKENS,
        },
        fineTuneId,
        { attempt: 1, log },
      );
      if (outcome !== 'evaluated') throw new Error(`evaluation ended ${outcome}`);
      if (round === 0) continue;
      ownMs.push(performance.now() - t);
      ownCpu.push(cpuMs() - cpu);
    }

    const n = calls.length;
    const bareRate = n / (median(bareMs) / 1000);
    const stageRate = n / (median(stageMs) / 1000);
    const paired = stageMs.map((m, i) => bareMs[i]! / m);
    const ratio = median(paired);
    const ratioOfMedians = stageRate / bareRate;
    const bestRatio = Math.min(...bareMs) / Math.min(...stageMs);
    const share = median(scoringShares);
    const perAnswer = (ms: number) => fmt((ms * 1000) / n);
    console.log(
      `evaluation stage: ${fmt(DOCS)} held-out invoices × 2 models = ${fmt(n)} answers, ${CONCURRENCY} calls in flight, ${ROUNDS - 1} rounds each after a warm-up (alternating), load average ${readLoad()}`,
    );
    console.log(
      `stage     ${fmt(stageRate)} answers/s (${fmt(stageRate / 2, 1)} examples/s; rounds ${stageMs.map((m) => fmt(m)).join(', ')} ms)   bare SDK calls ${fmt(bareRate)} calls/s (rounds ${bareMs.map((m) => fmt(m)).join(', ')} ms)`,
    );
    console.log(
      `ratio     ${ratio.toFixed(2)} (median of the paired rounds ${paired.map((r) => r.toFixed(2)).join(', ')}; of the medians ${ratioOfMedians.toFixed(2)}, best rounds ${bestRatio.toFixed(2)}) (target ≥ ${TARGET_RATIO}) ${ratio >= TARGET_RATIO ? 'ok' : 'TARGET MISSED'}`,
    );
    console.log(
      `cpu       this process ${perAnswer(median(stageCpu))} µs per answer in the stage rounds, ${perAnswer(median(bareCpu))} µs per call in the baseline's; the scratch database's Postgres backends ${perAnswer(median(pgCpu))} µs per answer (rounds ${pgCpu.map((m) => fmt(m)).join(', ')} ms; /proc, 10 ms ticks)`,
    );
    console.log(
      `start/end the stage's own start ${fmt(median(startMs), 1)} ms (before its first call) and end ${fmt(median(endMs), 1)} ms (after its last answer) per run (medians; ends ${endMs.map((m) => fmt(m)).join(', ')} ms)`,
    );
    console.log(
      `own cost  ${fmt(median(ownMs))} ms per run of ${fmt(n)} answers with a provider that answers at once (${perAnswer(median(ownMs))} µs per answer; this process's CPU ${perAnswer(median(ownCpu))} µs per answer; rounds ${ownMs.map((m) => fmt(m)).join(', ')} ms)`,
    );
    console.log(
      `scoring   ${(share * 100).toFixed(2)}% of the stage's wall time (answers scored as they arrive, plus the summary; rounds ${scoringShares.map((s) => (s * 100).toFixed(2)).join(', ')}%) (target < ${TARGET_SHARE * 100}%) ${share < TARGET_SHARE ? 'ok' : 'TARGET MISSED'}`,
    );
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
    await scratch.drop();
  }
}

function readLoad(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

async function fineTune(client: OpenAI, jsonl: string): Promise<string> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(jsonl), 'train.jsonl'),
    purpose: 'fine-tune',
  });
  while ((await client.files.retrieve(file.id)).status !== 'processed')
    await new Promise((r) => setTimeout(r, 2));
  const job = await client.fineTuning.jobs.create({ model: BASE, training_file: file.id, seed: 7 });
  for (;;) {
    const j = await client.fineTuning.jobs.retrieve(job.id);
    if (j.status === 'succeeded') return j.fine_tuned_model!;
    if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`bench job ${j.status}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function bare(
  client: OpenAI,
  calls: { model: string; messages: { role: 'system' | 'user'; content: string }[] }[],
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < calls.length) {
        const c = calls[next++]!;
        await client.chat.completions.create({
          model: c.model,
          messages: c.messages,
          max_completion_tokens: MAX_TOKENS,
          temperature: 0,
        });
      }
    }),
  );
}

async function seedDataset(db: Db): Promise<string> {
  const { datasetId } = await insertDatasetRow(
    db,
    LICENSE,
    {
      base_model: BASE,
      status: 'uploaded',
      test_percent: 20,
      content_hash: 'c'.repeat(64),
      short_hash: 'cccccccc',
      train_path: 'datasets/train.jsonl',
      test_path: 'datasets/test.jsonl',
      train_examples: 48,
      test_examples: DOCS,
    },
    { request_id: `bench-${randomUUID()}`, content_hash: 'b'.repeat(64), correlation_id: 'corr-bench' },
  );
  return datasetId;
}

/** A settled, succeeded fine-tune of `model` with a pending evaluation run (one per round). */
async function seedFineTune(db: Db, datasetId: string, model: string): Promise<string> {
  const row = await db
    .insertInto('fine_tunes')
    .values({
      license_id: LICENSE,
      dataset_id: datasetId,
      correlation_id: 'corr-bench',
      status: 'succeeded',
      base_model: BASE,
      description: 'bench',
      notify_emails: [],
      suffix: 'bench',
      hyperparameters: JSON.stringify('auto'),
      credits_per_million_tokens: 3000,
      fine_tuned_model: model,
      trained_tokens: 1000,
      settled_at: new Date(),
      available: true,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await createEvaluationRun(db, {
    fineTuneId: row.id,
    licenseId: LICENSE,
    correlationId: 'corr-bench',
    maxExamples: DOCS,
  });
  return row.id;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
