// End-to-end load: fine-tune requests per second through the whole pipeline, as `packages/harness`'s
// trial runs it: the seven workers as separate processes (dataset-builder, uploader, trainer, poller,
// billing, evaluator, notifier), the requests spread round-robin over 20 licenses and the three provider
// profiles (openai, azure, together: one simulator at zero latency speaks all three dialects, at a speed
// at which training takes no real time), webhooks on, a loopback SMTP server. Every other request has a
// testing file (its 10 documents plus 2 held out), so its fine-tune is also evaluated after settlement.
// A request counts once it is terminal: its fine-tune settled, its evaluation (if any) ended and every
// notification sent or failed for good. The trial's report follows: the exactly-once checks per
// provider, stage latency percentiles from the rows' timestamps, CPU per service and per fine-tune.
// Target on this 2-core machine: >= 50/s.
// Baseline in the same run: six chained BullMQ queues with empty handlers, in one process on the same
// Redis: what moving a message through the hops of a request without evaluation (fine-tune-requests,
// files-upload, finetune-create, finetune-poll, billing-settle, notify-send) costs before any work is
// done; an evaluated request takes one hop more (evaluate), which the baseline leaves out.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { failedChecks, formatReport, runTrial } from '@tuneline/harness';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { requireServers } from './support.ts';

const REQUESTS = Number(process.env.BENCH_PIPELINE_REQUESTS ?? 600);
const TARGET = 50;
const HOPS = 6;

const { baseUrl, redisUrl } = requireServers('pipeline.bench');

/** Messages per second through six chained BullMQ queues whose handlers do nothing but pass them on. */
async function bareQueueChain(messages: number): Promise<number> {
  const prefix = `tlbench-chain-${randomBytes(4).toString('hex')}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = Array.from({ length: HOPS }, (_, i) => new Queue(`hop-${i}`, { connection, prefix }));
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // BullMQ workers block on their connection: one each, closed at the end so the process can exit.
  const workerConnections = queues.map(() => new Redis(redisUrl, { maxRetriesPerRequest: null }));
  const workers = queues.map(
    (_, i) =>
      new Worker(
        `hop-${i}`,
        async (job: Job) => {
          if (i + 1 < HOPS) await queues[i + 1]?.add('m', job.data, { jobId: `${job.id}-${i + 1}` });
          else if (++done === messages) finish();
        },
        {
          connection: workerConnections[i] as Redis,
          prefix,
          concurrency: 8,
          removeOnComplete: { count: 1000 },
        },
      ),
  );
  const started = Date.now();
  await queues[0]?.addBulk(
    Array.from({ length: messages }, (_, n) => ({ name: 'm', data: { n }, opts: { jobId: `m${n}` } })),
  );
  await finished;
  const rate = messages / ((Date.now() - started) / 1000);
  await Promise.all(workers.map((w) => w.close()));
  for (const q of queues) await q.obliterate({ force: true }).catch(() => {});
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
  for (const c of workerConnections) c.disconnect();
  return rate;
}

const chainRate = await bareQueueChain(REQUESTS);
console.log(`baseline: ${chainRate.toFixed(1)} messages/s through ${HOPS} empty BullMQ hops`);

const report = await runTrial({
  root: join(import.meta.dirname, '..'),
  serverDatabaseUrl: baseUrl,
  redisUrl,
  requests: REQUESTS,
  documents: 10,
  licenses: 20,
  speed: 1_000_000,
  faults: { latencyMs: 0 },
  timeoutMs: 15 * 60_000,
  progress: (line) => console.log(line),
});
console.log(formatReport(report).join('\n'));
console.log(
  `end to end: ${report.fineTunesPerSecond.toFixed(1)} fine-tunes/s (${REQUESTS} requests, 10 documents each); ` +
    `ratio to the bare ${HOPS}-hop queue chain: ${(report.fineTunesPerSecond / chainRate).toFixed(3)}`,
);
const failed = failedChecks(report);
if (failed.length) console.log(`CHECKS FAILED: ${failed.join('; ')}`);
if (report.fineTunesPerSecond < TARGET)
  console.log(`TARGET MISSED: ${report.fineTunesPerSecond.toFixed(1)} < ${TARGET} fine-tunes/s`);
