import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROWSER_TESTS } from '../../scripts/browser-tests.ts';

const root = join(import.meta.dirname, '..', '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

// `npm test -- <file>` provides Chromium only for the files it knows drive a browser: a hub test left
// out of the list fails alone on a machine without Chromium (test/evaluator/api-hub.test.ts did).
describe('browser tests', () => {
  it('lists every test file that drives the hub in Chromium, and only those', () => {
    const driving = testFiles(join(root, 'test'))
      .filter((file) =>
        /from '(\.\.\/)+support\/hub\.ts'|from 'playwright-core'/.test(readFileSync(file, 'utf8')),
      )
      .map((file) => relative(root, file))
      .filter((file) => !file.startsWith('test/devstack/'))
      .sort();
    expect(driving).toEqual([...BROWSER_TESTS].sort());
  });
});
