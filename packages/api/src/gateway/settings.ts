/**
 * The gateway's tunables (environment variables of the API, packages/api/src/config.ts). The defaults
 * are what Tuneline ships; docs/GATEWAY.md says why each one is safe, and the bench compares them with
 * the old behaviour (`GATEWAY_BENCH_VARIANTS`).
 */
export interface GatewaySettings {
  /** Caching of the API-key and model look-ups, in ms (0: every call reads Postgres). */
  cacheTtlMs: number;
  /**
   * `async`: the hold's transaction commits without waiting for its WAL flush (settlements and
   * releases always wait). `durable`: it waits too.
   */
  holdCommit: 'async' | 'durable';
  /**
   * `bound`: the prompt is held at its UTF-8 byte count (a token is at least one byte, so never low),
   * counted exactly only when that bound does not fit in the balance. `exact`: always counted exactly.
   */
  promptCount: 'bound' | 'exact';
  /** A hold neither settled nor released this long after it was taken is released by the sweep. */
  holdExpiryMs: number;
  /** How long an Idempotency-Key is remembered (its first answer replayed). */
  idempotencyRetentionMs: number;
  /** How often the API runs the sweep (expired holds, old idempotency keys); 0: never. */
  sweepIntervalMs: number;
}

export const defaultGatewaySettings: GatewaySettings = {
  cacheTtlMs: 1_000,
  holdCommit: 'async',
  promptCount: 'bound',
  holdExpiryMs: 60 * 60_000,
  idempotencyRetentionMs: 24 * 60 * 60_000,
  sweepIntervalMs: 60_000,
};
