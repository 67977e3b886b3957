import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureChromium, findChromium, StackError } from '@tuneline/devstack';
import { describe, expect, it } from 'vitest';

/** A directory to use as PATH, holding the named executables (shell scripts that do nothing). */
function fakePath(...executables: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tl-path-'));
  for (const name of executables) {
    writeFileSync(join(dir, name), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

describe('Chromium for the hub test', () => {
  it('uses CHROMIUM_PATH when it points at an executable', () => {
    const path = join(fakePath('my-chrome'), 'my-chrome');
    expect(findChromium({ env: { CHROMIUM_PATH: path }, paths: [] })).toEqual({
      path,
      note: 'CHROMIUM_PATH',
    });
  });

  it('refuses a CHROMIUM_PATH that is missing or not executable, naming it', () => {
    const dir = fakePath();
    const notExecutable = join(dir, 'chromium');
    writeFileSync(notExecutable, '');
    for (const path of [join(dir, 'missing'), notExecutable, dir]) {
      expect(() => findChromium({ env: { CHROMIUM_PATH: path } })).toThrow(
        new RegExp(`CHROMIUM_PATH is set to ${path}, which is not an executable file`),
      );
    }
  });

  it('finds a browser at the usual paths first, then by its usual names on PATH', () => {
    const atPath = join(fakePath('chromium'), 'chromium');
    const onPath = fakePath('google-chrome');
    expect(findChromium({ env: { PATH: onPath }, paths: ['/nonexistent/chromium', atPath] })).toEqual({
      path: atPath,
      note: atPath,
    });
    expect(findChromium({ env: { PATH: `/nonexistent:${onPath}` }, paths: [] })).toEqual({
      path: join(onPath, 'google-chrome'),
      note: 'google-chrome on PATH',
    });
    // A directory named like the browser is not one.
    const withDir = fakePath();
    mkdirSync(join(withDir, 'chromium'));
    expect(findChromium({ env: { PATH: withDir }, paths: [] })).toBeNull();
  });

  it('with no browser and TUNELINE_NO_INSTALL set, stops naming the package, CHROMIUM_PATH and the switch', () => {
    // apt-get is on this PATH, so only the switch stops the install.
    const attempt = () =>
      ensureChromium({
        env: { PATH: fakePath('apt-get'), TUNELINE_NO_INSTALL: '1' },
        paths: [],
        log: () => {},
      });
    expect(attempt).toThrow(StackError);
    expect(attempt).toThrow(/No Chromium found .*cannot be installed here \(TUNELINE_NO_INSTALL is set\)/);
    expect(attempt).toThrow(/apt-get install -y --no-install-recommends chromium/);
    expect(attempt).toThrow(/set CHROMIUM_PATH/);
  });

  it('without apt-get, says that is why nothing was installed', () => {
    expect(() => ensureChromium({ env: { PATH: fakePath() }, paths: [], log: () => {} })).toThrow(
      /cannot be installed here \(apt-get is not available\)/,
    );
  });
});
