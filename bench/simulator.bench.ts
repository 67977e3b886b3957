// Simulator figures, each with a baseline measured in the same run:
// 1. API throughput: job retrieves/s through the `openai` SDK, 32 at a time, against the rate of a bare
//    node:http server answering the same JSON body (the transport floor). Target: >= 0.5× the floor.
// 2. Toy-model chat: completions/s on a model fine-tuned on 2,000 examples (learned at its first call,
//    timed apart; then one extraction per call), against retrieves/s of the same simulator. Printed, no
//    target.
// 3. Training-file validation: examples/s of validateTrainingFile on 20,000 examples against the bare
//    tokenizer counting the same message texts. Target: >= 0.5× the tokenizer rate.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BASE_MODELS, countTextTokens, startSimulator, validateTrainingFile } from '@tuneline/simulator';
import OpenAI from 'openai';
import { sdkClient, uploadTrainingFile } from '../test/simulator/support.ts';

const CONCURRENCY = 32;
const REQUESTS = Number(process.env.SIM_BENCH_REQUESTS ?? 4_000);
const CHAT_EXAMPLES = 2_000;
const VALIDATE_EXAMPLES = 20_000;

function example(i: number) {
  return {
    messages: [
      { role: 'system', content: 'Extract the invoice fields as JSON.' },
      {
        role: 'user',
        content: `Invoice ${100_000 + i} from supplier ${i % 97} dated 2026-${(i % 12) + 1}-${(i % 28) + 1} net ${i * 3}.10 vat 19% total ${(i * 3.57).toFixed(2)} EUR, item ${i % 13} x ${i % 7}`,
      },
      {
        role: 'assistant',
        content: JSON.stringify({
          invoice_number: String(100_000 + i),
          total: (i * 3.57).toFixed(2),
          currency: 'EUR',
        }),
      },
    ],
  };
}

async function rate(total: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await call(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

const fmt = (n: number) => n.toFixed(0).padStart(8);
const verdict = (ratio: number, target: number) => (ratio >= target ? 'ok' : 'TARGET MISSED');

async function main(): Promise<void> {
  const sim = await startSimulator({ seed: 1, speed: 100_000 });
  const client = sdkClient(sim);
  try {
    const jsonl = `${Array.from({ length: CHAT_EXAMPLES }, (_, i) => JSON.stringify(example(i))).join('\n')}\n`;
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: await uploadTrainingFile(client, jsonl, 'bench.jsonl'),
      hyperparameters: { n_epochs: 1 },
    });
    let done = await client.fineTuning.jobs.retrieve(job.id);
    while (!['succeeded', 'failed'].includes(done.status)) {
      await new Promise((r) => setTimeout(r, 20));
      done = await client.fineTuning.jobs.retrieve(job.id);
    }
    if (done.status !== 'succeeded') throw new Error(`bench job ${done.status}: ${done.error?.message}`);

    // Baseline: a bare server answering the same job JSON.
    const body = JSON.stringify(done);
    const bare = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(body),
    );
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const bareClient = new OpenAI({
      baseURL: `http://127.0.0.1:${(bare.address() as AddressInfo).port}/v1`,
      apiKey: 'x',
      maxRetries: 0,
    });
    // Warm both up (JIT, sockets) before measuring.
    await rate(300, () => bareClient.fineTuning.jobs.retrieve(job.id));
    await rate(300, () => client.fineTuning.jobs.retrieve(job.id));
    const bareRate = await rate(REQUESTS, () => bareClient.fineTuning.jobs.retrieve(job.id));
    bare.close();
    const simRate = await rate(REQUESTS, () => client.fineTuning.jobs.retrieve(job.id));
    const apiRatio = simRate / bareRate;
    console.log(
      `api      simulator ${fmt(simRate)} req/s   bare server ${fmt(bareRate)} req/s   ratio ${apiRatio.toFixed(2)} (target >= 0.5) ${verdict(apiRatio, 0.5)}`,
    );

    const model = done.fine_tuned_model!;
    const learnStarted = performance.now();
    await client.chat.completions.create({
      model,
      messages: example(0).messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[],
    });
    const firstCallMs = performance.now() - learnStarted;
    const chatRate = await rate(Math.min(REQUESTS, 1_000), (i) =>
      client.chat.completions.create({
        model,
        messages: example(i + 7).messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[],
      }),
    );
    console.log(
      `chat     fine-tuned on ${CHAT_EXAMPLES} ${fmt(chatRate)} req/s   retrieves ${fmt(simRate)} req/s   ratio ${(chatRate / simRate).toFixed(2)}   (first call, which learns the model: ${firstCallMs.toFixed(0)} ms)`,
    );
  } finally {
    await sim.close();
  }

  // The tokenizer caches pieces it has seen, so the baseline and the validator each get texts of their
  // own (same shape), after a shared warm-up.
  const model = BASE_MODELS[0]!;
  const set = (from: number) => Array.from({ length: VALIDATE_EXAMPLES }, (_, i) => example(from + i));
  validateTrainingFile(
    `${set(10 * VALIDATE_EXAMPLES)
      .slice(0, 2_000)
      .map((e) => JSON.stringify(e))
      .join('\n')}\n`,
    model,
  );
  const baselineSet = set(0);
  const bigJsonl = `${set(VALIDATE_EXAMPLES)
    .map((e) => JSON.stringify(e))
    .join('\n')}\n`;
  let started = performance.now();
  let tokens = 0;
  for (const e of baselineSet)
    for (const m of e.messages) tokens += countTextTokens(m.content, model.encoding);
  const tokenizerRate = VALIDATE_EXAMPLES / ((performance.now() - started) / 1000);
  started = performance.now();
  const result = validateTrainingFile(bigJsonl, model);
  const validateRate = VALIDATE_EXAMPLES / ((performance.now() - started) / 1000);
  if (!result.ok) throw new Error(`bench file invalid: ${result.message}`);
  const vRatio = validateRate / tokenizerRate;
  console.log(
    `validate ${fmt(validateRate)} examples/s   bare tokenizer ${fmt(tokenizerRate)} examples/s (${tokens} content tokens)   ratio ${vRatio.toFixed(2)} (target >= 0.5) ${verdict(vRatio, 0.5)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
