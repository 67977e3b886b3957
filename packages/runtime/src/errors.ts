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
  ) {
    super(message);
  }
}
