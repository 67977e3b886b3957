import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_FIELD_DEPTH } from '@tuneline/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectSameExampleWarnings,
  invoices,
  invoicesWithRepeatAndOutlier,
  requestInput,
  TEXT_ONLY_PROMPT,
} from './fixtures.ts';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const exec = promisify(execFile);
const BIN = join(import.meta.dirname, '../../packages/cli/bin/tuneline.mjs');

async function tuneline(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { maxBuffer: 10 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// Each command is a fresh Node process that loads tsx and a tokenizer: slow on a busy machine.
describe('tuneline build-dataset / validate (as processes)', { timeout: 120_000 }, () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tuneline-cli-'));
    writeFileSync(
      join(dir, 'docs.ndjson'),
      `${invoices(60)
        .map((d) => JSON.stringify(d))
        .join('\n')}\n`,
    );
    const { documents: _d, requestId: _r, licenseId: _l, ...rest } = requestInput({ testPercent: 20 });
    writeFileSync(join(dir, 'request.json'), JSON.stringify(rest));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `tuneline build-dataset` into `out`; the documents and configuration are docs.ndjson and request.json unless given. */
  const buildDataset = (
    out: string,
    files: { documents?: string; config?: string } = {},
    ...flags: string[]
  ) =>
    tuneline(
      'build-dataset',
      '--documents',
      files.documents ?? join(dir, 'docs.ndjson'),
      '--config',
      files.config ?? join(dir, 'request.json'),
      '--out',
      out,
      ...flags,
    );

  it('build-dataset writes train.jsonl and test.jsonl and prints the grid row as JSON', async () => {
    const out = join(dir, 'out');
    const r = await buildDataset(out, {}, '--json');
    expect(r.code, r.stderr).toBe(0);
    const row = JSON.parse(r.stdout);
    expect(row).toMatchObject({
      status: 'ready',
      documents: 60,
      trainExamples: 48,
      testExamples: 12,
      epochs: 3,
      errors: [],
    });
    expect(row.shortHash).toHaveLength(8);
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(48);
    expect(readFileSync(join(out, 'test.jsonl'), 'utf8').trim().split('\n')).toHaveLength(12);
    expect(BigInt(row.estimatedBilledTokens)).toBe(3n * BigInt(row.trainTokens));

    // The same inputs give the same files and hash (same code path as the worker).
    const again = await buildDataset(join(dir, 'out2'), {}, '--json');
    expect(JSON.parse(again.stdout).contentHash).toBe(row.contentHash);

    // The training file passes validate with the same token figures.
    const v = await tuneline('validate', join(out, 'train.jsonl'), '--json');
    expect(v.code).toBe(0);
    const report = JSON.parse(v.stdout);
    expect(report).toMatchObject({ usable: true, examples: 48, errors: [], epochs: 3 });
    expect(String(report.tokens.total)).toBe(row.trainTokens);
    expect(report.estimatedCredits).toBe(row.estimatedCredits);
  });

  it('build-dataset exits 1 and names the document on invalid input', async () => {
    const docs = invoices(12).map((d, i) => (i === 2 ? { ...d, text: 'x <|endoftext|>' } : d));
    writeFileSync(join(dir, 'bad.ndjson'), `${docs.map((d) => JSON.stringify(d)).join('\n')}\n{not json\n`);
    const r = await buildDataset(join(dir, 'bad-out'), { documents: join(dir, 'bad.ndjson') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/status\s+invalid/);
    expect(r.stdout).toContain(
      'error: document "inv-0002", field "text": text contains the special token <|endoftext|>',
    );
    expect(r.stdout).toMatch(/error: line 13: not JSON: /);
  });

  it('build-dataset checks each NDJSON line as the request body is checked: unknown keys, field depth', async () => {
    // The same document schema as a request's documents: an unknown key is refused and a field may
    // not nest deeper than MAX_FIELD_DEPTH. The error names the line (blank lines count) and the field.
    let deep: unknown = 1;
    for (let i = 0; i < MAX_FIELD_DEPTH + 5; i++) deep = [deep];
    const docs = invoices(12).map((d, i) =>
      i === 2 ? { ...d, extra: 'x' } : i === 5 ? { ...d, fields: { ...d.fields, lines: deep } } : d,
    );
    const lines = docs.map((d) => JSON.stringify(d));
    lines.splice(1, 0, ''); // a blank line 2: document #3 is on line 4, document #6 on line 7
    writeFileSync(join(dir, 'strict.ndjson'), `${lines.join('\n')}\n`);
    const r = await tuneline(
      'build-dataset',
      '--documents',
      join(dir, 'strict.ndjson'),
      '--config',
      join(dir, 'request.json'),
      '--out',
      join(dir, 'strict-out'),
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/status\s+invalid/);
    expect(r.stdout).toContain('error: line 4, field "extra": Unrecognized key "extra"');
    expect(r.stdout).toContain(
      `error: line 7, field "fields.lines": must not nest deeper than ${MAX_FIELD_DEPTH} levels`,
    );
  });

  it('build-dataset refuses a bad config with exit 2 naming the field', async () => {
    writeFileSync(
      join(dir, 'bad-request.json'),
      JSON.stringify({ ...requestInput(), documents: undefined, testPercent: 90 }),
    );
    const r = await buildDataset(join(dir, 'x'), { config: join(dir, 'bad-request.json') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('testPercent');
  });

  it('build-dataset refuses a documents path that is missing or not a file with exit 2', async () => {
    for (const [path, reason] of [
      [join(dir, 'no-such.ndjson'), 'ENOENT'],
      [dir, 'not a file'],
    ] as const) {
      const r = await buildDataset(join(dir, 'x'), { documents: path });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--documents ${path}: `);
      expect(r.stderr).toContain(reason);
    }
  });

  it('build-dataset and validate report the same duplicate and outlier warnings', async () => {
    const docs = invoicesWithRepeatAndOutlier();
    writeFileSync(join(dir, 'repeats.ndjson'), `${docs.map((d) => JSON.stringify(d)).join('\n')}\n`);
    const {
      documents: _d,
      requestId: _r,
      licenseId: _l,
      ...settings
    } = requestInput({
      modelConfig: TEXT_ONLY_PROMPT,
    });
    writeFileSync(join(dir, 'repeats-request.json'), JSON.stringify(settings));
    const out = join(dir, 'repeats-out');
    const files = { documents: join(dir, 'repeats.ndjson'), config: join(dir, 'repeats-request.json') };
    const built = await buildDataset(out, files, '--json');
    expect(built.code, built.stderr).toBe(0);
    const validated = await tuneline('validate', join(out, 'train.jsonl'), '--json');
    expect(validated.code, validated.stderr).toBe(0);
    const shared = expectSameExampleWarnings(
      JSON.parse(built.stdout).warnings,
      JSON.parse(validated.stdout).warnings,
      docs.map((d) => d.id),
    );
    expect(shared.map((w) => [w.code, w.documentIds])).toEqual([
      ['duplicate_examples', ['copy-of-3']],
      ['token_length_outliers', ['inv-0020']],
    ]);

    // And as people read them: the same message, the examples by document or by line.
    const builtText = await buildDataset(out, files);
    const validatedText = await tuneline('validate', join(out, 'train.jsonl'));
    for (const w of shared) {
      expect(builtText.stdout).toContain(`warning: ${w.message} (documents "${w.documentIds?.[0]}")`);
      expect(validatedText.stdout).toMatch(
        new RegExp(`  ${w.code}: ${escapeRegExp(w.message)} \\(lines \\d+\\)`),
      );
    }
  });

  it('validate counts each format error kind with line numbers and exits 1', async () => {
    const good = (i: number) =>
      JSON.stringify({
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: `q${i}` },
          { role: 'assistant', content: `a${i}` },
        ],
      });
    const lines = [
      ...Array.from({ length: 10 }, (_, i) => good(i)),
      '[1, 2]', // 11 data_type
      '{"prompt": "x"}', // 12 missing_messages_list
      '{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}', // 13 message_missing_key + missing_content
      '{"messages": [{"role": "user", "content": "q", "extra": 1}, {"role": "assistant", "content": "a"}]}', // 14 unrecognized key
      '{"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}', // 15 unrecognized_role
      '{"messages": [{"role": "user", "content": "q"}]}', // 16 no assistant
      '{"messages": [{"role": "user", "content": "<|im_start|>"}, {"role": "assistant", "content": "a"}]}', // 17 special
      `{"messages": [{"role": "user", "content": "${'word '.repeat(17_000)}"}, {"role": "assistant", "content": "a"}]}`, // 18 too long (3.5)
      '{oops', // 19 invalid json
    ];
    writeFileSync(join(dir, 'bad.jsonl'), `${lines.join('\n')}\n`);
    const r = await tuneline('validate', join(dir, 'bad.jsonl'), '--model', 'gpt-3.5-turbo-0125', '--json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    const byKind = Object.fromEntries(
      report.errors.map((e: { kind: string; lines: number[] }) => [e.kind, e.lines]),
    );
    expect(byKind).toEqual({
      invalid_json: [19],
      data_type: [11],
      missing_messages_list: [12],
      message_missing_key: [13],
      message_unrecognized_key: [14],
      unrecognized_role: [15],
      missing_content: [13],
      example_missing_assistant_message: [16],
      special_tokens: [17],
      too_many_tokens: [18],
    });
    expect(report.usable).toBe(false);
    expect(report.warnings).toContainEqual(expect.objectContaining({ code: 'missing_system_message' }));
    expect(report.tokens).toMatchObject({
      min: expect.any(Number),
      max: expect.any(Number),
      median: expect.any(Number),
      p90: expect.any(Number),
    });

    const human = await tuneline('validate', join(dir, 'bad.jsonl'), '--model', 'gpt-3.5-turbo-0125');
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('unrecognized_role: 1 (lines 15)');
  });

  it('validate refuses an unknown model with a usage error', async () => {
    const r = await tuneline('validate', join(dir, 'bad.jsonl'), '--model', 'gpt-9');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown model "gpt-9"');
  });
});
