#!/usr/bin/env node
// In a checkout, the CLI runs its TypeScript sources through tsx (development needs no build step).
// Deployed (the images: `pnpm deploy` of this package, no workspace around it) it runs the bundle that
// `npm run build` made, dist/main.js, and tsx is not installed there.
import { existsSync } from 'node:fs';

if (existsSync(new URL('../../../pnpm-workspace.yaml', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
} else if (existsSync(new URL('../dist/main.js', import.meta.url))) {
  await import('../dist/main.js');
} else {
  process.stderr.write(
    'tuneline: dist/main.js is missing: this deployed CLI was not built (npm run build, before pnpm deploy)\n',
  );
  process.exit(78);
}
