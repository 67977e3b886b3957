import { type Logger, pino } from 'pino';

export type { Logger };

/** Structured JSON logs; every line carries the service, and job lines the queue, jobId and correlationId. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}
