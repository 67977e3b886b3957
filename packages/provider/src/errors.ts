import { PermanentError, RateLimitedError } from '@tuneline/runtime';
import { APIError } from 'openai';

const DEFAULT_RETRY_AFTER_MS = 1_000;

/** Milliseconds to wait from `retry-after-ms`, `retry-after` (seconds or an HTTP date), else 1 s. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number {
  const ms = Number(headers?.get('retry-after-ms'));
  if (headers?.get('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  const raw = headers?.get('retry-after');
  if (raw) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(raw);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return DEFAULT_RETRY_AFTER_MS;
}

/**
 * The runtime's error classes for a provider error: 429 → RateLimitedError (honouring Retry-After);
 * any other 4xx except 408 and 409 → PermanentError with the provider's message; everything else
 * (5xx, 408, 409, connection errors, timeouts) unchanged, so the job retries with backoff.
 */
export function mapProviderError(err: unknown): unknown {
  if (!(err instanceof APIError) || err.status === undefined) return err;
  const status = err.status;
  if (status === 429)
    return new RateLimitedError(retryAfterMs(err.headers), `provider rate limit (429): ${err.message}`);
  if (status >= 400 && status < 500 && status !== 408 && status !== 409) {
    const e = new PermanentError(`provider rejected the request (${status}): ${err.message}`);
    (e as PermanentError & { cause?: unknown }).cause = err;
    return e;
  }
  return err;
}

export async function withProviderErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw mapProviderError(err);
  }
}

/** A webhook whose signature, timestamp or headers don't check out. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}
