// Dataset storage (issue 23): what the write-then-rename of LocalFileStorage and the S3 backend cost the
// dataset builder and the uploader, with a baseline in the same run.
// 1. Local writes: STORAGE_BENCH_MB (default 64) MiB of JSONL lines through LineWriter into
//    LocalFileStorage (temporary file, fsync, rename) against a plain fs.createWriteStream with the same
//    1 MiB buffer (what LocalFileStorage wrote with before). Rounds alternate; the ratio is the median of
//    the rounds' CPU ratios (this process's user + system time).
// 2. S3: the same bytes written to and read back (SHA-256 checked) from a bucket on s3rver on loopback
//    (pure JavaScript, in this process, so its CPU is counted too: an upper bound for the client), against
//    the local write and read. The read's largest growth of memory outside the V8 heap
//    (`arrayBuffers`) and of the heap, sampled while streaming, shows it never holds the object.
// Printed, no target.

import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { type DatasetStorage, LineWriter, LocalFileStorage } from '@tuneline/dataset';
import { startS3Server } from '../test/support/s3.ts';

const MB = Number(process.env.STORAGE_BENCH_MB ?? 64);
const ROUNDS = 7;
const line = (i: number) =>
  `{"messages":[{"role":"system","content":"Extract the invoice fields as JSON."},{"role":"user","content":"Invoice ${i} total ${100 + (i % 900)} EUR ACME GmbH Musterstrasse ${i % 97}"},{"role":"assistant","content":"{\\"total\\":${100 + (i % 900)}}"}]}\n`;

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number, digits = 1) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Writes MB MiB of lines; returns CPU ms, wall ms and the SHA-256. */
async function writeLines(stream: Writable): Promise<{ cpu: number; wall: number; sha256: string }> {
  const hash = createHash('sha256');
  const start = process.cpuUsage();
  const t0 = performance.now();
  const writer = new LineWriter(stream, { hash });
  for (let i = 0; writer.bytes < MB * 1024 * 1024; i++) {
    const wait = writer.write(line(i));
    if (wait) await wait;
  }
  await writer.end();
  return { cpu: cpuMs(start), wall: performance.now() - t0, sha256: hash.digest('hex') };
}

async function readAll(storage: DatasetStorage, key: string, sha256: string) {
  const base = process.memoryUsage();
  let peakBuffers = 0;
  let peakHeap = 0;
  const start = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  for await (const chunk of storage.openRead(key, { sha256 })) {
    bytes += (chunk as Buffer).length;
    const m = process.memoryUsage();
    peakBuffers = Math.max(peakBuffers, m.arrayBuffers - base.arrayBuffers);
    peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
  }
  return { cpu: cpuMs(start), wall: performance.now() - t0, bytes, peakBuffers, peakHeap };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-storage-bench-'));
  const s3 = await startS3Server('tuneline-bench');
  try {
    const local = new LocalFileStorage(join(dir, 'local'));
    const s3Storage = await s3.storage();
    console.log(`storage bench: ${MB} MiB of JSONL per write, ${ROUNDS} rounds`);

    // 1. Local: write-then-rename against a plain stream.
    const ratios: number[] = [];
    const atomic: number[] = [];
    const plain: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ['plain', 'atomic'] : ['atomic', 'plain'];
      const cpu: Record<string, number> = {};
      for (const which of order) {
        const stream =
          which === 'plain'
            ? createWriteStream(join(dir, `plain-${r}.jsonl`), { highWaterMark: 1024 * 1024 })
            : local.createWriteStream(`atomic-${r}.jsonl`);
        cpu[which] = (await writeLines(stream)).cpu;
      }
      atomic.push(cpu.atomic as number);
      plain.push(cpu.plain as number);
      ratios.push((cpu.atomic as number) / (cpu.plain as number));
    }
    console.log(
      `local write: LocalFileStorage ${fmt(median(atomic))} ms CPU (${fmt((median(atomic) / MB) * 1000, 0)} µs/MiB), plain stream ${fmt(median(plain))} ms; ratio ${fmt(median(ratios), 3)} (rounds ${ratios.map((x) => fmt(x, 2)).join(', ')})`,
    );

    // 2. S3 against local, write and read back with the hash checked.
    const rows: string[] = [];
    for (const [name, storage] of [
      ['local', local],
      ['s3rver', s3Storage],
    ] as const) {
      const writes: number[] = [];
      const reads: number[] = [];
      const walls: number[] = [];
      let last = { peakBuffers: 0, peakHeap: 0 };
      for (let r = 0; r < 3; r++) {
        const key = `bench/${name}-${r}.jsonl`;
        const w = await writeLines(storage.createWriteStream(key));
        const rd = await readAll(storage, key, w.sha256);
        writes.push(w.cpu);
        reads.push(rd.cpu);
        walls.push(w.wall + rd.wall);
        last = rd;
        await storage.remove(key);
      }
      rows.push(
        `${name}: write ${fmt(median(writes))} ms CPU, read+verify ${fmt(median(reads))} ms CPU, wall write+read ${fmt(median(walls), 0)} ms; read peak memory growth: buffers ${fmt(last.peakBuffers / 2 ** 20)} MiB, heap ${fmt(last.peakHeap / 2 ** 20)} MiB (object ${MB} MiB)`,
      );
    }
    for (const row of rows) console.log(row);
  } finally {
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
