#!/usr/bin/env node
// Entry point of `npm test`, `npm run demo`, `npm run bench` (and chaos, build) from a fresh clone: needs
// only Node and npm. It installs the pinned pnpm's dependencies when the lockfile or a package.json changed
// since the last install (a second run skips this), then hands over to scripts/<command>.ts under tsx.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [command = 'test', ...args] = process.argv.slice(2);

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 11)) {
  console.error(`tuneline: Node.js >= 20.11 is required (this is ${process.versions.node}).`);
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmSpec = pkg.packageManager; // e.g. pnpm@10.34.8, pinned

function manifestHash() {
  const hash = createHash('sha256');
  const files = ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml'];
  for (const group of ['packages', 'services']) {
    for (const name of readdirSync(join(root, group))) files.push(join(group, name, 'package.json'));
  }
  for (const file of files.sort()) {
    const path = join(root, file);
    if (existsSync(path)) hash.update(file).update(readFileSync(path));
  }
  return hash.digest('hex');
}

const marker = join(root, 'node_modules', '.tuneline-install-hash');
const wanted = manifestHash();
if (!existsSync(marker) || readFileSync(marker, 'utf8') !== wanted) {
  console.error(`tuneline: installing dependencies with ${pnpmSpec} ...`);
  const result = spawnSync('npx', ['--yes', pnpmSpec, 'install', '--frozen-lockfile'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (result.status !== 0) {
    console.error(
      `tuneline: dependency install failed (exit ${result.status}). It needs the npm registry; ` +
        `run "npx ${pnpmSpec} install" to see the full error.`,
    );
    process.exit(result.status ?? 1);
  }
  writeFileSync(marker, manifestHash());
}

const script = join(root, 'scripts', `${command}.ts`);
if (!existsSync(script)) {
  console.error(`tuneline: unknown command "${command}" (expected test, demo, bench, chaos or build)`);
  process.exit(2);
}
const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? (run.signal ? 1 : 0));
