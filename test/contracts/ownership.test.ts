import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * One owner for every rule (issue 17): messages and job ids in packages/contracts, statements in the
 * repositories of packages/db (and the ledger's own), provider errors free of the runtime. A rule
 * written a second time somewhere else shows up here with its file and line.
 */

const root = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...sources(path));
    } else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** `file:line: text` of every line matching `pattern` in the files. */
function matches(files: string[], pattern: RegExp): string[] {
  return files.flatMap((file) =>
    readFileSync(join(root, file), 'utf8')
      .split('\n')
      .flatMap((line, i) =>
        pattern.test(line) ? [`${relative(root, join(root, file))}:${i + 1}: ${line.trim()}`] : [],
      ),
  );
}

const productionSources = [
  ...sources('packages').filter((f) => f.includes('/src/')),
  ...sources('services').filter((f) => f.includes('/src/')),
  ...sources('scripts'),
  ...sources('bench'),
];

describe('one owner per rule', () => {
  it('only packages/contracts builds a queue envelope or a job id', () => {
    const outside = productionSources.filter((f) => !f.startsWith('packages/contracts/'));
    expect(matches(outside, /schemaVersion\s*:/)).toEqual([]);
    // `<queue>-${…}` templates and the old generic jobId(queue, …) helper.
    const queueIds =
      /['"`](fine-tune-requests|files-upload|finetune-create|finetune-poll|billing-settle|notify-send)-/;
    expect(matches(outside, queueIds)).toEqual([]);
  });

  it('no SQL in the services or the API routes: the repositories hold every statement', () => {
    const files = [
      ...sources('services').filter((f) => f.includes('/src/')),
      ...sources('packages/api/src/routes'),
    ];
    expect(matches(files, /\b(selectFrom|insertInto|updateTable|deleteFrom)\b|\bsql`|from 'kysely'/)).toEqual(
      [],
    );
  });

  it('the provider package does not depend on the runtime', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'packages/provider/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('@tuneline/runtime');
    expect(matches(sources('packages/provider/src'), /@tuneline\/runtime/)).toEqual([]);
  });
});
