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

  /** Runs `npm run demo -- --exit [args]` on the file's database; its standard output. */
  async function demo(...args: string[]): Promise<string> {
    const apiPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--exit', ...args], {
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
    return out;
  }

  it('runs the pipeline to an available model, charges trained tokens × price, and writes the e-mail', async () => {
    const out = await demo();
    // On the suite's clock (before 2027-01-06) OpenAI still trains gpt-4o-mini: the demo says what it chose.
    expect(out).toMatch(
      /training gpt-4o-mini-2024-07-18 at openai \(open on 2026-11-16 per the catalogue; no new jobs from 2027-01-06\)/,
    );

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

  it('--lifecycle: warns of a simulated training close, moves the clock past it, and migrates to Azure', async () => {
    const out = await demo('--lifecycle');
    const model = /model: (ft:gpt-4o-mini-2024-07-18:\S+) \(available\)/.exec(out)?.[1] ?? '';
    expect(model, out).not.toBe('');
    // The simulated close is 5 days after the demo's clock (the suite's 2026-11-16).
    expect(out).toContain('takes no new jobs from 2026-11-21, shuts down 2026-12-06');
    expect(out).toContain(`alias invoices → ${model}`);
    expect(out).toMatch(
      /warning e-mail: "Tuneline: gpt-4o-mini-2024-07-18 at openai takes no new fine-tuning jobs on 2026-11-21"/,
    );
    expect(out).toMatch(
      /\[training_closes soon, shutdown soon\] Base model gpt-4o-mini-2024-07-18 at openai/,
    );
    // Past the close: the banner says so and OpenAI takes no new job, naming the successor.
    expect(out).toMatch(/hub banners on 2026-11-22:\n\s+\[training_closes past/);
    expect(out).toContain(
      'a new request on gpt-4o-mini-2024-07-18 at openai: 400 baseModel: base model "gpt-4o-mini-2024-07-18" takes no new fine-tuning jobs at openai since 2026-11-21; successor: azure:gpt-4o-mini-2024-07-18',
    );
    // The migration: a new model at Azure, evaluated against the old one, the alias moved.
    const moved = /→ (ft:\S+) \(gpt-4o-mini-2024-07-18 at azure\)/.exec(out)?.[1] ?? '';
    expect(moved, out).not.toBe('');
    expect(out).toContain('status succeeded, rule if-not-worse, decision promoted');
    expect(out).toContain(`alias invoices now serves ${moved}`);
    expect(out).toMatch(/field\s+base\s+champion\s+fine-tuned/);
    expect(out).toContain(`champion ${model}`);
    expect(out).toMatch(
      /Verdict against the champion: no significant difference|Verdict against the champion: better/,
    );
    const mail = [...out.matchAll(/ {2}e-mail: (\S+\.eml)/g)].at(-1)?.[1] ?? '';
    expect(existsSync(mail), out).toBe(true);
    expect(mimeParts(readFileSync(mail, 'utf8'))['text/plain']).toContain(
      `Decision: promoted: deploying ${moved} at azure; the old model's aliases move to it once it serves`,
    );
    // Azure serves a fine-tune once deployed: the migration waited for the deployment, then moved the alias.
    expect(out).toMatch(/migration deploying/);
  }, 300_000);
});
