// `tuneline build-dataset` as a user runs it: the whole CLI process (bin/tuneline.mjs, tsx, every
// module the command loads, reading the NDJSON file, the build, the output), its peak RSS and time, at
// 50,000 synthetic invoices (~3 KB of OCR text each) and at 5,000. Target: peak RSS < 300 MB at
// 50,000. Baselines from the same run: a bare Node process that reads and parses the same file twice
// (readline + JSON.parse, as the build reads its source twice), and `tuneline --help` (what loading the
// CLI costs before any document is read). A third input gives each of the 50,000 documents a word of
// its own (OCR noise and reference numbers make such words): the tokenizer caches each new piece.
//
// Each process reports its own figures at exit through a tiny preloaded module
// (process.resourceUsage(): ru_maxrss, the peak resident set of the whole process, and its CPU time).
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invoices, type SyntheticDoc, settings } from './dataset-invoices.ts';

const DOCS = Number(process.env.DATASET_CLI_BENCH_DOCS ?? 50_000);
const SMALL = Math.round(DOCS / 10);
const TARGET_RSS_MB = 300;
const CLI = join(import.meta.dirname, '..', 'packages', 'cli', 'bin', 'tuneline.mjs');

const dir = mkdtempSync(join(tmpdir(), 'tuneline-dataset-cli-bench-'));

/** Letters only, so the word stays one piece for the tokenizer. */
function lettersOf(i: number): string {
  let s = '';
  do {
    s += String.fromCharCode(97 + (i % 26));
    i = Math.floor(i / 26);
  } while (i > 0);
  return s;
}

/** The document with a long word no other document has (one more line before the totals). */
function withOwnWord(doc: SyntheticDoc, i: number): SyntheticDoc {
  return {
    ...doc,
    text: doc.text.replace('\nSumme netto', `\nLieferscheinnummer${lettersOf(i)}\nSumme netto`),
  };
}

/** Writes `n` documents as NDJSON; returns the file's path and size. */
async function writeDocuments(n: number, ownWords = false): Promise<{ path: string; bytes: number }> {
  const path = join(dir, `documents-${n}${ownWords ? '-own-words' : ''}.ndjson`);
  const out = createWriteStream(path);
  let bytes = 0;
  let i = 0;
  for (const doc of invoices(n)) {
    const line = `${JSON.stringify(ownWords ? withOwnWord(doc, i) : doc)}\n`;
    i++;
    bytes += Buffer.byteLength(line);
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { path, bytes };
}

// Loaded with --import before anything else: reports the whole process's peak RSS and CPU at exit.
const reporter = join(dir, 'usage-reporter.mjs');
writeFileSync(
  reporter,
  `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(process.env.TUNELINE_BENCH_USAGE_FILE, JSON.stringify({ maxRssKb: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }));
});
`,
);

/** The floor: Node reading and parsing the file twice, keeping nothing. */
const BARE_READ = `
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
let documents = 0;
for (let pass = 0; pass < 2; pass++) {
  for await (const line of createInterface({ input: createReadStream(process.argv[1]), crlfDelay: Infinity })) {
    if (line.trim() !== '' && JSON.parse(line).id) documents++;
  }
}
process.stdout.write(String(documents / 2));
`;

interface Measured {
  peakRssMb: number;
  cpuSeconds: number;
  wallSeconds: number;
  stdout: string;
}

function measure(label: string, args: string[]): Measured {
  const usageFile = join(dir, `usage-${label}.json`);
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', reporter, ...args], {
    encoding: 'utf8',
    maxBuffer: 10 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TUNELINE_BENCH_USAGE_FILE: usageFile },
  });
  const wallSeconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${label} exited with ${r.status ?? r.signal}`);
  const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as { maxRssKb: number; cpuUs: number };
  return { peakRssMb: usage.maxRssKb / 1024, cpuSeconds: usage.cpuUs / 1e6, wallSeconds, stdout: r.stdout };
}

function buildDatasetCli(label: string, n: number, documents: string): Measured {
  const out = join(dir, `out-${label}`);
  const m = measure(`build-${label}`, [
    CLI,
    'build-dataset',
    '--documents',
    documents,
    '--config',
    join(dir, 'request.json'),
    '--out',
    out,
    '--json',
  ]);
  const row = JSON.parse(m.stdout) as { status: string; documents: number; errors: unknown[] };
  if (row.status !== 'ready' || row.documents !== n)
    throw new Error(
      `build-dataset of ${n}: ${row.status}, ${row.documents} documents, ${JSON.stringify(row.errors)}`,
    );
  rmSync(out, { recursive: true, force: true });
  return m;
}

try {
  writeFileSync(join(dir, 'request.json'), JSON.stringify(settings));
  const big = await writeDocuments(DOCS);
  const small = await writeDocuments(SMALL);
  const ownWords = await writeDocuments(DOCS, true);

  const bare = measure('bare-read', ['--input-type=module', '-e', BARE_READ, big.path]);
  if (Number(bare.stdout) !== DOCS) throw new Error(`bare read counted ${bare.stdout} documents`);
  const help = measure('help', [CLI, '--help']);
  const smallBuild = buildDatasetCli('small', SMALL, small.path);
  const bigBuild = buildDatasetCli('big', DOCS, big.path);
  const ownWordsBuild = buildDatasetCli('own-words', DOCS, ownWords.path);

  const line = (label: string, m: Measured, docs?: number) =>
    console.log(
      `  ${label.padEnd(42)} peak RSS ${m.peakRssMb.toFixed(0).padStart(4)} MB  ${m.wallSeconds.toFixed(2).padStart(6)} s wall  ${m.cpuSeconds.toFixed(2).padStart(6)} s CPU` +
        (docs
          ? `  ${(docs / m.wallSeconds).toFixed(0)} docs/s wall, ${(docs / m.cpuSeconds).toFixed(0)} docs/s CPU`
          : ''),
    );
  console.log(
    `dataset CLI bench: ${DOCS} synthetic invoices, ${(big.bytes / 1e6).toFixed(1)} MB of NDJSON (${(big.bytes / DOCS / 1024).toFixed(2)} KB per line)`,
  );
  line('bare node: read + parse twice', bare);
  line('tuneline --help', help);
  line(`tuneline build-dataset ${SMALL}`, smallBuild, SMALL);
  line(`tuneline build-dataset ${DOCS}`, bigBuild, DOCS);
  line(`tuneline build-dataset ${DOCS}, own words`, ownWordsBuild, DOCS);
  console.log(
    `  peak RSS build ${DOCS} / bare read: ${(bigBuild.peakRssMb / bare.peakRssMb).toFixed(2)}x; build ${DOCS} / --help: ${(bigBuild.peakRssMb / help.peakRssMb).toFixed(2)}x; build ${DOCS} / build ${SMALL}: ${(bigBuild.peakRssMb / smallBuild.peakRssMb).toFixed(2)}x`,
  );
  for (const [label, m] of [
    [`${DOCS}`, bigBuild],
    [`${DOCS}, own words`, ownWordsBuild],
  ] as const) {
    console.log(`  peak RSS build ${label}: ${m.peakRssMb.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB)`);
    if (m.peakRssMb >= TARGET_RSS_MB)
      console.log(
        `TARGET MISSED: build-dataset ${label} peak RSS ${m.peakRssMb.toFixed(0)} MB >= ${TARGET_RSS_MB} MB`,
      );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
