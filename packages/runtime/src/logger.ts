import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs; every line carries the service, and job lines the queue, jobId and correlationId.
 * Written synchronously: a worker that is killed (OOM, SIGKILL) must not take its last lines with it,
 * and a few lines per job cost little.
 */
export function createLogger(service: string, level = 'info'): Logger {
  return pino(
    { level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: true }),
  );
}
