// The document store (issue 22): ingest throughput through the API (HTTP on loopback, keep-alive,
// auth, per-item checks, content hashes, the upsert) against a bare multi-row INSERT of the same rows
// with the same batch size and concurrency, in the same run and the same database (target >= 0.5x);
// then a re-send of everything (the no-op path); then the build of a dataset version from 100,000 stored
// documents read back through `readStoredDocuments`, against the same build from the same documents in
// memory. DOCUMENTS_BENCH_INGEST / DOCUMENTS_BENCH_STORED override the 20,000 and 100,000.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiKey } from '@tuneline/api';
import { documentContentHash } from '@tuneline/contracts';
import { buildDataset, LocalFileStorage } from '@tuneline/dataset';
import { readStoredDocuments } from '@tuneline/db';
import { createRedis } from '@tuneline/runtime';
import { invoices, settings } from './dataset-invoices.ts';
import { listeningApi, requireServers, scratchDatabase } from './support.ts';

const INGEST = Number(process.env.DOCUMENTS_BENCH_INGEST ?? 20_000);
const STORED = Number(process.env.DOCUMENTS_BENCH_STORED ?? 100_000);
const BATCH = 1_000;
const CONCURRENCY = 2;
const TARGET_RATIO = 0.5;

const { baseUrl, redisUrl } = requireServers('documents.bench');

const scratch = await scratchDatabase(baseUrl, 'documents', 12);
const redis = createRedis(redisUrl, 'producer');
const { app, url: address } = await listeningApi(scratch.db, redis, 'bench-documents');
await scratch.db.insertInto('licenses').values({ id: 'bench', name: 'bench' }).execute();
const { key } = await createApiKey(scratch.db, 'bench');

type Doc = { configuration: string; id: string; text: string; fields: Record<string, unknown> };
function batchesOf(configuration: string, n: number): Doc[][] {
  const all = [...invoices(n)].map((d) => ({ configuration, id: d.id, text: d.text, fields: d.fields }));
  const out: Doc[][] = [];
  for (let i = 0; i < all.length; i += BATCH) out.push(all.slice(i, i + BATCH));
  return out;
}

/** Runs `work` over the batches, CONCURRENCY at a time; documents per second. */
async function rate(batches: Doc[][], work: (batch: Doc[]) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < batches.length) await work(batches[next++] as Doc[]);
    }),
  );
  const docs = batches.reduce((sum, b) => sum + b.length, 0);
  return docs / ((performance.now() - started) / 1000);
}

async function throughApi(batch: Doc[]): Promise<void> {
  const res = await fetch(`${address}/v1/documents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ documents: batch }),
  });
  if (res.status !== 200) throw new Error(`POST /v1/documents answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
}

/** The floor: the same rows, hashed, in one INSERT per batch, no HTTP, no checks, no conflict handling. */
async function bareInsert(batch: Doc[]): Promise<void> {
  await scratch.db
    .insertInto('documents')
    .values(
      batch.map((d) => ({
        license_id: 'bench',
        configuration: d.configuration,
        document_id: d.id,
        content_hash: documentContentHash(d),
        text: d.text,
        fields: JSON.stringify(d.fields),
      })),
    )
    .execute();
}

const mb = (docs: Doc[][]) => docs.flat().reduce((s, d) => s + d.text.length, 0) / 1e6;
const load = () => loadavg()[0]?.toFixed(1);

// Warm both paths (JIT, pool, plan caches) on their own configurations.
await rate(batchesOf('warm-api', 2 * BATCH), throughApi);
await rate(batchesOf('warm-bare', 2 * BATCH), bareInsert);

// Alternate the two so a change in the machine's load hits both.
const apiRates: number[] = [];
const bareRates: number[] = [];
for (let round = 0; round < 2; round++) {
  const apiBatches = batchesOf(`api-${round}`, INGEST / 2);
  const bareBatches = batchesOf(`bare-${round}`, INGEST / 2);
  apiRates.push(await rate(apiBatches, throughApi));
  bareRates.push(await rate(bareBatches, bareInsert));
}
const apiRate = apiRates.reduce((a, b) => a + b) / apiRates.length;
const bareRate = bareRates.reduce((a, b) => a + b) / bareRates.length;
const ratio = apiRate / bareRate;
console.log(
  `ingest  ${INGEST} documents (${mb(batchesOf('x', INGEST)).toFixed(0)} MB of text), batches of ${BATCH}, ${CONCURRENCY} at a time, load ${load()}`,
);
console.log(
  `  API (POST /v1/documents)  ${apiRate.toFixed(0)} documents/s  (rounds ${apiRates.map((r) => r.toFixed(0)).join(', ')})`,
);
console.log(
  `  bare INSERT               ${bareRate.toFixed(0)} documents/s  (rounds ${bareRates.map((r) => r.toFixed(0)).join(', ')})`,
);
console.log(
  `  ratio ${ratio.toFixed(2)} (target >= ${TARGET_RATIO})${ratio >= TARGET_RATIO ? '' : '  TARGET MISSED'}`,
);

const resend = await rate(batchesOf('api-0', INGEST / 2), throughApi);
console.log(`  re-sending the same documents (no-op): ${resend.toFixed(0)} documents/s`);

// A version from the store: fill one configuration to STORED documents, then build.
const storedBatches = batchesOf('version', STORED);
const fillRate = await rate(storedBatches, bareInsert);
console.log(
  `\nversion build from ${STORED} stored documents (filled at ${fillRate.toFixed(0)} documents/s), load ${load()}`,
);
async function timeBuild(source: () => AsyncIterable<unknown> | Iterable<unknown>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-documents-bench-'));
  try {
    const started = performance.now();
    const result = await buildDataset(settings, source, {
      storage: new LocalFileStorage(dir),
      trainKey: 'train.jsonl',
      testKey: 'test.jsonl',
    });
    if (result.status !== 'ready')
      throw new Error(`bench dataset invalid: ${JSON.stringify(result.errors.slice(0, 3))}`);
    return (performance.now() - started) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const inMemory = storedBatches.flat().map(({ id, text, fields }) => ({ id, text, fields }));
const fromMemory = await timeBuild(() => inMemory);
const fromStore = await timeBuild(() =>
  readStoredDocuments(scratch.db, { licenseId: 'bench', configuration: 'version' }),
);
console.log(`  from the store   ${fromStore.toFixed(1)} s  (${(STORED / fromStore).toFixed(0)} documents/s)`);
console.log(
  `  from memory      ${fromMemory.toFixed(1)} s  (${(STORED / fromMemory).toFixed(0)} documents/s)`,
);
console.log(`  ratio (memory time / store time) ${(fromMemory / fromStore).toFixed(2)}`);

await app.close();
redis.disconnect();
await scratch.drop();
