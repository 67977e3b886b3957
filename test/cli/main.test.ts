import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandLoaders } from '../../packages/cli/src/commands/index.ts';

const root = join(import.meta.dirname, '../..');
const tuneline = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'packages/cli/bin/tuneline.mjs'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '', REDIS_URL: '' },
  });

describe('tuneline', () => {
  it('lists every command in --help', () => {
    const result = tuneline('--help');
    expect(result.status).toBe(0);
    for (const name of [
      'migrate',
      'workers',
      'api',
      'sim',
      'build-dataset',
      'validate',
      'credits',
      'ledger',
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });

  it('loads each command under its own name (commands load only when they run)', async () => {
    for (const [name, load] of commandLoaders) expect((await load()).name).toBe(name);
  });

  it.each([['workers'], ['api'], ['ledger', 'audit']])(
    'answers an unknown option of `%s` with exit 2, the option named and the usage',
    (...command) => {
      const result = tuneline(...command, '--no-such-option');
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("Unknown option '--no-such-option'");
      expect(result.stderr).toContain(`tuneline ${command[0]}`);
    },
  );
});
