import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs; every line carries the service, and job lines the queue, jobId and correlationId.
 * Written synchronously: a worker that is killed (OOM, SIGKILL) must not take its last lines with it,
 * and a few lines per job cost little.
 */
export function createLogger(
  service: string,
  level = 'info',
  /** Where the lines go (default stdout); tests pass a stream that keeps them to read back. */
  destination: { write(line: string): void } = pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
