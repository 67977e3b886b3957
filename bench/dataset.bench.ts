// Dataset builder figures: 50,000 synthetic invoice documents (~3 KB of OCR text each) through the
// builder to a temp dir — documents/s, MB/s, peak RSS — against the bare tokenizer counting the same
// texts in the same run (target: build rate >= 0.8 × tokenizer rate), and peak RSS of a 5,000-document
// run vs the 50,000-document run (target: < 300 MB and within 1.3×). Each measurement runs in its own
// child process so RSS and tokenizer caches start equal.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDataset, LocalFileStorage, tokenCounter } from '@tuneline/dataset';
import { invoices, settings } from './dataset-invoices.ts';

const BIG = Number(process.env.DATASET_BENCH_DOCS ?? 50_000);
const SMALL = Math.round(BIG / 10);
const TARGET_RATIO = 0.8;
/** Documents built and counted before timing, to load and compile both code paths. */
const WARM_UP_DOCS = 500;
const TARGET_RSS_MB = 300;
const TARGET_RSS_GROWTH = 1.3;

// ---- child measurements ---------------------------------------------------------------------------

interface ChildResult {
  docs: number;
  textBytes: number;
  /** Wall-clock seconds (the median round's, as the CPU figures below). */
  buildSeconds: number;
  tokenizeSeconds: number;
  /** CPU seconds (user + system, all threads): what the rates and the ratio use, so other load on
   * the machine does not skew them. */
  buildCpu: number;
  tokenizeCpu: number;
  /** The two bare passes (before and after the build) that tokenizeCpu averages. */
  tokenizeCpuBeforeAfter: [number, number];
  /** Every round's ratio (bare CPU / build CPU), in run order. */
  ratios: number[];
  peakRssMb: number;
  tokens: number;
  bareTokens: number;
}

/** Builds per child; the ratio reported is the median round's. */
const ROUNDS = Number(process.env.DATASET_BENCH_ROUNDS ?? 3);

/**
 * One size: bare tokenizer, build, bare tokenizer, build, … bare tokenizer (ROUNDS builds), each with
 * the tokenizer's cache emptied so all start cold. A round's baseline is the mean of the two bare
 * passes that bracket its build in time, so a change in the machine's load skews it less; the median
 * of the rounds' ratios is reported, so one burst of load on this shared VM does not decide it.
 * The bare passes allocate no more than the build does, so the process's peak RSS is the build's.
 */
async function child(n: number): Promise<ChildResult> {
  const counter = tokenCounter('o200k_base');
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  // One-off start-up work every process does once, outside both timed parts: loading the rank tables
  // and compiling (JIT) the build path and the tokenizer, by building and counting a few documents.
  const warmDir = mkdtempSync(join(tmpdir(), 'tuneline-dataset-bench-warm-'));
  try {
    await buildDataset(settings, () => invoices(WARM_UP_DOCS), {
      storage: new LocalFileStorage(warmDir),
      trainKey: 'train.jsonl',
      testKey: 'test.jsonl',
    });
    for (const doc of invoices(WARM_UP_DOCS)) counter.count(doc.text);
  } finally {
    rmSync(warmDir, { recursive: true, force: true });
  }

  let textBytes = 0;
  let bareTokens = 0;
  const bare = () => {
    counter.clearCache();
    textBytes = 0;
    bareTokens = 0;
    const started = performance.now();
    const cpuStarted = cpu();
    for (const doc of invoices(n)) {
      textBytes += doc.text.length;
      bareTokens += counter.count(doc.text);
    }
    return { seconds: (performance.now() - started) / 1000, cpu: cpu() - cpuStarted };
  };

  let tokens = 0;
  const build = async () => {
    counter.clearCache();
    const dir = mkdtempSync(join(tmpdir(), 'tuneline-dataset-bench-'));
    try {
      const started = performance.now();
      const cpuStarted = cpu();
      const result = await buildDataset(settings, () => invoices(n), {
        storage: new LocalFileStorage(dir),
        trainKey: 'train.jsonl',
        testKey: 'test.jsonl',
      });
      const measured = { seconds: (performance.now() - started) / 1000, cpu: cpu() - cpuStarted };
      if (result.status !== 'ready')
        throw new Error(`bench dataset invalid: ${JSON.stringify(result.errors.slice(0, 3))}`);
      tokens = Number(result.trainTokens + result.testTokens);
      return measured;
    } finally {
      // Deleting the bench's output is not build work: after the clock stops.
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const bares = [bare()];
  const builds: { seconds: number; cpu: number }[] = [];
  // Peak RSS of one build (later rounds reuse a heap the first one grew, and would report more).
  let peakRssMb = 0;
  for (let round = 0; round < ROUNDS; round++) {
    builds.push(await build());
    if (round === 0) peakRssMb = process.resourceUsage().maxRSS / 1024;
    bares.push(bare());
  }
  const rounds = builds.map((b, i) => {
    const before = bares[i] as { seconds: number; cpu: number };
    const after = bares[i + 1] as { seconds: number; cpu: number };
    return { build: b, before, after, ratio: (before.cpu + after.cpu) / 2 / b.cpu };
  });
  const median = [...rounds].sort((x, y) => x.ratio - y.ratio)[
    Math.floor(rounds.length / 2)
  ] as (typeof rounds)[number];
  return {
    docs: n,
    textBytes,
    buildSeconds: median.build.seconds,
    tokenizeSeconds: (median.before.seconds + median.after.seconds) / 2,
    buildCpu: median.build.cpu,
    tokenizeCpu: (median.before.cpu + median.after.cpu) / 2,
    tokenizeCpuBeforeAfter: [median.before.cpu, median.after.cpu],
    ratios: rounds.map((r) => r.ratio),
    peakRssMb,
    tokens,
    bareTokens,
  };
}

function runChild(n: number): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', String(n)], {
    encoding: 'utf8',
    maxBuffer: 10 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`child for ${n} documents exited with ${r.status}`);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as ChildResult;
}

// ---- main -------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  process.stdout.write(`${JSON.stringify(await child(Number(argv[1])))}\n`);
} else {
  // Making the texts is part of both figures (the build reads its source twice): time it alone.
  const genStart = performance.now();
  let genChars = 0;
  for (const d of invoices(BIG)) genChars += d.text.length;
  const genSeconds = (performance.now() - genStart) / 1000;

  const small = runChild(SMALL);
  const big = runChild(BIG);
  const mb = (r: ChildResult) => r.textBytes / 1e6;
  console.log(
    `dataset bench: synthetic invoices, ${(big.textBytes / big.docs / 1024).toFixed(2)} KB of OCR text each; making ${BIG} texts alone takes ${genSeconds.toFixed(2)} s`,
  );
  for (const r of [small, big]) {
    console.log(
      `  ${String(r.docs).padStart(6)} docs  build ${r.buildCpu.toFixed(2)} s CPU (${r.buildSeconds.toFixed(2)} s wall) = ${(r.docs / r.buildCpu).toFixed(0)} docs/s, ${(mb(r) / r.buildCpu).toFixed(2)} MB/s` +
        `  | bare tokenizer ${r.tokenizeCpu.toFixed(2)} s CPU (mean of ${r.tokenizeCpuBeforeAfter.map((x) => x.toFixed(2)).join(' before, ')} after; ${r.tokenizeSeconds.toFixed(2)} s wall) = ${(r.docs / r.tokenizeCpu).toFixed(0)} docs/s, ${(mb(r) / r.tokenizeCpu).toFixed(2)} MB/s` +
        `  | ratio ${(r.tokenizeCpu / r.buildCpu).toFixed(2)} (wall ${(r.tokenizeSeconds / r.buildSeconds).toFixed(2)}; median of ${r.ratios.map((x) => x.toFixed(2)).join(', ')})  | peak RSS ${r.peakRssMb.toFixed(0)} MB  | example tokens ${r.tokens}`,
    );
  }
  const ratio = big.tokenizeCpu / big.buildCpu;
  const growth = big.peakRssMb / small.peakRssMb;
  console.log(
    `  build rate / bare tokenizer rate (${BIG} docs): ${ratio.toFixed(2)} (target >= ${TARGET_RATIO})`,
  );
  console.log(`  peak RSS ${BIG} docs: ${big.peakRssMb.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB)`);
  console.log(`  peak RSS ${BIG} / ${SMALL} docs: ${growth.toFixed(2)}x (target <= ${TARGET_RSS_GROWTH}x)`);
  if (ratio < TARGET_RATIO)
    console.log(`TARGET MISSED: build/tokenizer rate ratio ${ratio.toFixed(2)} < ${TARGET_RATIO}`);
  if (big.peakRssMb >= TARGET_RSS_MB)
    console.log(`TARGET MISSED: peak RSS ${big.peakRssMb.toFixed(0)} MB >= ${TARGET_RSS_MB} MB`);
  if (growth > TARGET_RSS_GROWTH)
    console.log(`TARGET MISSED: RSS growth ${growth.toFixed(2)}x > ${TARGET_RSS_GROWTH}x`);
  if (genChars === 0) throw new Error('no text generated');
}
