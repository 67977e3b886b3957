// Seeded fault injection. Every API request draws the same number of random values whatever happens,
// so the same seed and the same request sequence give the same faults.
import { z } from 'zod';
import { SeededRandom } from './random.ts';

const rate = z.number().min(0).max(1);

export const faultConfigSchema = z.object({
  /** Reseeds the fault sequence. */
  seed: z.number().int().optional(),
  /** Share of API requests answered 429 with Retry-After. */
  rate429: rate.default(0),
  /** Share of API requests answered 500. */
  rate500: rate.default(0),
  /** Share of API requests whose connection is dropped without an answer. */
  dropRate: rate.default(0),
  /** Latency added to every API request, in real milliseconds (not divided by speed). */
  latencyMs: z.number().int().min(0).default(0),
  /** Pause after each streamed chat chunk, in real milliseconds (a slow generation to abort mid-way). */
  streamDelayMs: z.number().int().min(0).default(0),
  /** A streamed chat answer's connection is cut after this many chunks (0: never): a provider failing mid-stream. */
  streamBreakAfter: z.number().int().min(0).default(0),
  /** Share of webhook events delivered twice. */
  duplicateWebhookRate: rate.default(0),
  /** Share of job creations that create the job but lose the answer. */
  lostCreateRate: rate.default(0),
  /** How a lost create answers: a 500, or a dropped connection. */
  lostCreateMode: z.enum(['500', 'drop']).default('500'),
  /** Retry-After sent with 429s, in seconds. */
  retryAfterSeconds: z.number().min(0).default(1),
});

export type FaultConfig = z.infer<typeof faultConfigSchema>;
export type FaultConfigInput = z.input<typeof faultConfigSchema>;

export type RequestFault = 'none' | '429' | '500' | 'drop';

export interface FaultLogEntry {
  seq: number;
  method: string;
  path: string;
  fault: RequestFault | 'lost-create-500' | 'lost-create-drop' | 'duplicate-webhook';
}

export class FaultInjector {
  config: FaultConfig;
  private random: SeededRandom;
  private seq = 0;
  readonly log: FaultLogEntry[] = [];

  constructor(seed: number, input: FaultConfigInput = {}) {
    this.config = faultConfigSchema.parse(input);
    this.random = new SeededRandom(this.config.seed ?? seed ^ 0x5eed);
  }

  /** Replaces the configuration; a given seed restarts the sequence. */
  configure(input: FaultConfigInput): void {
    this.config = faultConfigSchema.parse(input);
    if (this.config.seed !== undefined) {
      this.random = new SeededRandom(this.config.seed);
      this.seq = 0;
      this.log.length = 0;
    }
  }

  /** The fault for the next API request. */
  forRequest(method: string, path: string): RequestFault {
    const [a, b, c] = [this.random.next(), this.random.next(), this.random.next()];
    const { rate429, rate500, dropRate } = this.config;
    const fault: RequestFault = a < rate429 ? '429' : b < rate500 ? '500' : c < dropRate ? 'drop' : 'none';
    this.record(method, path, fault);
    return fault;
  }

  /** Whether this job creation loses its answer (the job is created anyway). */
  loseCreate(method: string, path: string): false | '500' | 'drop' {
    const lost = this.random.next() < this.config.lostCreateRate;
    if (!lost) return false;
    const mode = this.config.lostCreateMode;
    this.record(method, path, mode === '500' ? 'lost-create-500' : 'lost-create-drop');
    return mode;
  }

  duplicateWebhook(eventType: string): boolean {
    const dup = this.random.next() < this.config.duplicateWebhookRate;
    if (dup) this.record('WEBHOOK', eventType, 'duplicate-webhook');
    return dup;
  }

  private record(method: string, path: string, fault: FaultLogEntry['fault']): void {
    this.log.push({ seq: this.seq++, method, path, fault });
    if (this.log.length > 10_000) this.log.shift();
  }
}
