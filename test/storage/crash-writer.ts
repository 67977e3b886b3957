// Run by storage-contract.test.ts as its own process: writes to one key of the storage the environment
// names (STORAGE_BACKEND, STORAGE_DIR, S3_*) and never finishes, until the test kills it with SIGKILL.
import { createStorage, storageEnvSchema } from '@tuneline/dataset';

const storage = await createStorage(storageEnvSchema.parse(process.env));
const key = process.env.CRASH_KEY ?? 'crash/train.jsonl';
const out = storage.createWriteStream(key);
const chunk = Buffer.alloc(256 * 1024, '{"messages":[]}\n');
let written = 0;
// At most 32 MiB: enough for several multipart parts, and a bounded file should the kill never come.
while (written < 32 * 1024 * 1024) {
  if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  written += chunk.length;
}
process.stdout.write('wrote all, waiting to be killed\n');
setInterval(() => undefined, 60_000);
