import { type ChildProcess, spawn } from 'node:child_process';

/** A Node process started by a test, its stdout and stderr collected together. */
export interface CapturedProcess {
  child: ChildProcess;
  /** Everything it wrote so far. */
  output(): string;
  /** Resolves when it exits: code or signal, and when. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Runs `node <args>` with the given directory and environment, capturing its output. */
export function spawnCaptured(
  args: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv },
): CapturedProcess {
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, output: () => out, exit };
}
