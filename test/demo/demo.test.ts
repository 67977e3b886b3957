import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@tuneline/devstack';
import { describe, expect } from 'vitest';
import { mimeParts } from '../evaluator/support.ts';
import { redisUrl, type TestDatabase } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';

const root = join(import.meta.dirname, '../..');

describe('npm run demo -- --exit', () => {
  let tdb: TestDatabase;
  test.beforeAll(async ({ database }) => {
    tdb = database;
  });

  it('runs the pipeline to an available model, charges trained tokens × price, and writes the e-mail', async () => {
    const apiPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--exit'], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: tdb.url,
        REDIS_URL: redisUrl(),
        API_PORT: String(apiPort),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`demo exited ${code}\n${out}\n${err.slice(-4000)}`);

    expect(out).toMatch(/dataset \w+: 48 train \/ 12 test examples/);
    const model = /model: (ft:gpt-4o-mini-2024-07-18:\S+) \(available\)/.exec(out);
    expect(model, out).not.toBeNull();
    const trained = /trained tokens: ([\d,]+); price ([\d,]+) credits \/ 1M tokens/.exec(out);
    const charged = /charged ([\d,]+)/.exec(out);
    expect(trained && charged, out).toBeTruthy();
    const num = (s: string) => BigInt(s.replaceAll(',', ''));
    const expected = (num(trained![1]!) * num(trained![2]!) + 999_999n) / 1_000_000n;
    expect(num(charged![1]!)).toBe(expected);
    const mail = /e-mail: (\S+\.eml)/.exec(out);
    expect(mail, out).not.toBeNull();
    expect(existsSync(mail![1]!)).toBe(true);
    const eml = readFileSync(mail![1]!, 'utf8');
    expect(eml).toContain(model![1]!);
    expect(out).toMatch(/hub: http:\/\/127\.0\.0\.1:\d+\/hub +\(sign in with the license key tl_/);
    // The summary prints the evaluation table: the 12 testing invoices, fine-tuned against its base model.
    expect(out).toMatch(/evaluation on the testing file/);
    expect(out).toMatch(/Examples evaluated: 12/);
    expect(out).toMatch(/totalAmount\s+\d+\.\d%\s+\d+\.\d% \[/);
    expect(out).toMatch(/Verdict against the base model: better at n = 72/);
    expect(mimeParts(eml)['text/plain']).toContain('Evaluation on the testing file');
  }, 240_000);
});
