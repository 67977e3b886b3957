import type { ChatCompletionInput, ChatCompletionResult } from '@tuneline/provider';
import { ProviderError } from '@tuneline/provider';
import { withTimeout } from '@tuneline/runtime';

/** The evaluation ran past its deadline. */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

export interface AskOptions {
  /** Epoch ms after which no call is made and a call in flight is abandoned. */
  deadline: number;
  attempts: number;
  now?: () => number;
}

/**
 * One chat call for one example, tried again on a transient provider error (5xx, timeout, connection)
 * up to `attempts` times with exponential backoff and jitter: the example is retried, not the run. A
 * rate limit or a refusal is thrown at once for the stage to handle; so is the last transient error.
 */
export async function askWithRetries(
  call: (input: ChatCompletionInput) => Promise<ChatCompletionResult>,
  input: ChatCompletionInput,
  opts: AskOptions,
): Promise<ChatCompletionResult> {
  const now = opts.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    const left = opts.deadline - now();
    if (left <= 0) throw new DeadlineError('the evaluation reached its time limit');
    try {
      return await withTimeout(
        call(input),
        left,
        () => new DeadlineError('the evaluation reached its time limit'),
      );
    } catch (err) {
      const transient = err instanceof ProviderError && err.kind === 'transient';
      if (!transient || attempt >= opts.attempts) throw err;
      const backoff = Math.min(2_000, 100 * 2 ** (attempt - 1));
      await sleep(backoff / 2 + Math.random() * (backoff / 2));
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` over `tasks` with at most `concurrency` in flight. The first error stops new tasks from
 * starting; the ones in flight finish (their answers are stored), then that error is thrown.
 */
export async function runPool<T>(
  tasks: readonly T[],
  concurrency: number,
  work: (task: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < tasks.length) {
      const task = tasks[next++] as T;
      try {
        await work(task);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, lane));
  if (failure) throw failure.err;
}
