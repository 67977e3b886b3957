/**
 * A failure that retrying cannot fix (bad payload, provider 4xx, invalid data). The runtime turns it
 * into BullMQ's UnrecoverableError: the job fails at once with this message.
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/**
 * The provider asked us to slow down. The runtime pauses the whole queue for `retryAfterMs`
 * (BullMQ's rate limiter) and puts the job back without spending an attempt.
 */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(
    readonly retryAfterMs: number,
    message = `rate limited for ${retryAfterMs} ms`,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * An error that says what kind of failure it is, such as @tuneline/provider's `ProviderError`
 * (`auth`, `not_found`, `rejected`, `rate_limited`, `transient`). Described by its shape, so the
 * runtime depends on no provider.
 */
export interface KindedError extends Error {
  readonly kind: string;
  readonly retryAfterMs?: number | undefined;
}

export function isKindedError(err: unknown): err is KindedError {
  return err instanceof Error && typeof (err as { kind?: unknown }).kind === 'string';
}

const DEFAULT_RETRY_AFTER_MS = 1_000;

/**
 * What a stage throws for a dependency's failure, given the kinds the stage treats as permanent:
 * `rate_limited` → RateLimitedError (the queue pauses for `retryAfterMs`); a kind in `permanent` →
 * PermanentError (the job fails at once); any other error unchanged, so it retries with backoff. The
 * original error is the new one's `cause`.
 */
export function stageFailure(err: unknown, permanent: readonly string[] = []): unknown {
  if (!isKindedError(err)) return err;
  if (err.kind === 'rate_limited') {
    return new RateLimitedError(err.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS, err.message, { cause: err });
  }
  if (permanent.includes(err.kind)) return new PermanentError(err.message, { cause: err });
  return err;
}
