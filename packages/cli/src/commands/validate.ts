import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { describeIssue, findBaseModel, loadCatalogue, validateChatFile } from '@tuneline/dataset';
import { type Command, parseOptions, UsageError } from '../command.ts';

const DEFAULT_MODEL = 'gpt-4o-mini-2024-07-18';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Pre-flight check of a chat fine-tuning JSONL file: format, tokens, epochs, estimated credits',
  usage: [
    'tuneline validate FILE.jsonl [--model M] [--json]',
    '',
    `  --model  base model whose encoding and limits apply (default ${DEFAULT_MODEL})`,
    '  --json   print one JSON object',
    '',
    'Exit code 0 when the file is usable, 1 when it is not.',
  ].join('\n'),
  async run(argv) {
    const parsed = parseOptions(
      argv,
      { model: { type: 'string' }, json: { type: 'boolean' } },
      { allowPositionals: true },
    );
    const [file, ...extra] = parsed.positionals;
    if (!file || extra.length) throw new UsageError('give exactly one FILE.jsonl');
    const model = parsed.values.model ?? DEFAULT_MODEL;
    const catalogue = loadCatalogue();
    if (!findBaseModel(model, catalogue)) {
      throw new UsageError(`unknown model "${model}" (known: ${Object.keys(catalogue).join(', ')})`);
    }
    await access(file).catch((err: Error) => {
      throw new UsageError(`${file}: ${err.message}`);
    });
    let lastProgress = 0;
    const result = await validateChatFile(createReadStream(file), {
      model,
      catalogue,
      onProgress: process.stderr.isTTY
        ? (lines) => {
            if (Date.now() - lastProgress < 200) return;
            lastProgress = Date.now();
            process.stderr.write(`\rvalidate: ${lines} lines\u001b[K`);
          }
        : undefined,
    });
    if (lastProgress) process.stderr.write('\n');

    if (parsed.values.json) {
      process.stdout.write(`${JSON.stringify({ file, ...result })}\n`);
    } else {
      const t = result.tokens;
      const out = [
        `${file}: ${result.examples} examples, model ${result.model}`,
        result.usable ? 'usable: yes' : 'usable: NO',
        ...(result.errors.length ? ['errors:'] : ['no format errors']),
        ...result.errors.map(
          (e) =>
            `  ${e.kind}: ${e.count}${e.lines.length ? ` (lines ${e.lines.join(', ')}${e.count > e.lines.length ? ', …' : ''})` : ''}`,
        ),
        ...(result.warnings.length ? ['warnings:'] : []),
        ...result.warnings.map((w) => `  ${w.code}: ${describeIssue(w)}`),
        `tokens per example: min ${t.min}, max ${t.max}, mean ${t.mean}, median ${t.median}, p90 ${t.p90} (total ${t.total})`,
        `epochs (auto): ${result.epochs}`,
        `estimated billed tokens: ${result.estimatedBilledTokens}`,
        `estimated credits: ${result.estimatedCredits}`,
      ];
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return result.usable ? 0 : 1;
  },
};
