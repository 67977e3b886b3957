import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { parse } from 'yaml';

export const root = join(import.meta.dirname, '../..');

/** One Dockerfile instruction: `COPY --from=build /out/x /app` is { keyword: 'COPY', args: '--from=build /out/x /app' }. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  /** The image or earlier stage it starts FROM. */
  base: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages (comments dropped, `\` continuations joined). Enough for this repository's file. */
export function parseDockerfile(path: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  let startLine = 0;
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    if (!pending) startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const text = pending + line;
    pending = '';
    const match = /^(\S+)\s*(.*)$/s.exec(text);
    if (!match) return;
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`line ${startLine}: cannot read FROM ${args}`);
      stages.push({ name: from[2] ?? `stage-${stages.length}`, base: from[1]!, instructions: [] });
    } else if (keyword === 'ARG' && stages.length === 0) {
      // A global ARG before the first FROM.
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`line ${startLine}: ${keyword} before the first FROM`);
      stage.instructions.push({ keyword, args, line: startLine });
    }
  });
  return stages;
}

/** The stage and the earlier stages it is built FROM, nearest first. */
export function stageChain(stages: Stage[], name: string): Stage[] {
  const chain: Stage[] = [];
  let current = stages.find((s) => s.name === name);
  while (current) {
    chain.push(current);
    const base = current.base;
    current = stages.slice(0, stages.indexOf(current)).find((s) => s.name === base);
  }
  return chain;
}

/** The instruction in force for a target (the last one of that keyword, inherited from its base stages). */
export function effective(stages: Stage[], target: string, keyword: string): Instruction | undefined {
  for (const stage of stageChain(stages, target)) {
    const found = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
    if (found) return found;
  }
  return undefined;
}

/** Every instruction of one keyword along a target's chain. */
export function allOf(stages: Stage[], target: string, keyword: string): Instruction[] {
  return stageChain(stages, target).flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
}

/** The exec-form command of the HEALTHCHECK in force for a target. */
export function healthcheckCommand(stages: Stage[], target: string): string[] | undefined {
  const args = effective(stages, target, 'HEALTHCHECK')?.args ?? '';
  const cmd = /\bCMD\s+(\[.*\])$/.exec(args)?.[1];
  return cmd ? execForm(cmd) : undefined;
}

/** An exec-form (JSON array) argument; undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string') ? parsed : undefined;
}

export interface ComposeService {
  build?: { context: string; target?: string };
  image?: string;
  command?: string[];
  ports?: string[];
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  restart?: string;
  entrypoint?: string[];
}

/** docker-compose.yml as written (`${VAR:-default}` not interpolated), with YAML merge keys applied. */
export function readCompose(): {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
} {
  return parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true });
}

/**
 * The build stage's `for pkg in ...; do <deploy command>; <link command>; done`: the packages, the
 * `pnpm deploy` command and what follows it for each package.
 */
export function deployLoop(stages: Stage[]): { packages: string[]; command: string; after: string[] } {
  const run = stages
    .find((s) => s.name === 'build')
    ?.instructions.find((i) => i.keyword === 'RUN' && i.args.includes(' deploy '));
  const loop = /for pkg in ([^;]+);\s*do\s+(.+?);\s*done/.exec(run?.args ?? '');
  if (!loop) throw new Error('no `for pkg in ...; do pnpm ... deploy ...; done` in the build stage');
  const [command, ...after] = loop[2]!.split(';').map((c) => c.trim());
  return { packages: loop[1]!.trim().split(/\s+/), command: command!, after };
}

/** The build stage's RUN instructions, in order. */
export function buildStageRuns(stages: Stage[]): string[] {
  return (stages.find((s) => s.name === 'build')?.instructions ?? [])
    .filter((i) => i.keyword === 'RUN')
    .map((i) => i.args);
}

/**
 * Bare module specifiers a package's own source (src/ and bin/) imports: by default those it loads at
 * run time (type-only imports are erased); with `types`, type-only imports too.
 */
export function moduleImports(dir: string, opts: { types?: boolean } = {}): Set<string> {
  const imports = opts.types
    ? /^\s*(?:import|export)\s+[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm
    : /^\s*(?:import|export)\s+(?!type\s)[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm;
  const found = new Set<string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) {
        if (entry !== 'node_modules') walk(path);
      } else if (/\.(ts|mts|mjs|js)$/.test(entry) && !/\.test\.ts$/.test(entry)) {
        const source = readFileSync(path, 'utf8');
        const specifiers = [
          ...source.matchAll(imports),
          ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
          ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((m) => m[1]!);
        for (const s of specifiers) {
          if (s.startsWith('.') || s.startsWith('node:') || builtinModules.includes(s)) continue;
          found.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
        }
      }
    }
  };
  for (const sub of ['src', 'bin']) {
    try {
      walk(join(dir, sub));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return found;
}
