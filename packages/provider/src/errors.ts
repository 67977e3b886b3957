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
 * What went wrong at the provider, as every caller needs to know it:
 * - `auth`: 401/403, the key or its permissions (the deployment's problem, not the request's);
 * - `not_found`: 404, the job or file does not exist;
 * - `rejected`: any other 4xx except 408/409/429, or a file the provider could not process: the
 *   request itself is refused, and sending it again changes nothing;
 * - `rate_limited`: 429, with `retryAfterMs` from the response headers;
 * - `transient`: 408, 409, 5xx, connection errors and timeouts: worth trying again.
 * Which kinds end a job for good is each caller's decision, not this package's.
 */
export type ProviderErrorKind = 'auth' | 'not_found' | 'rejected' | 'rate_limited' | 'transient';

export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly kind: ProviderErrorKind;
  /** The provider's HTTP status; undefined when no response came (network, timeout) or none applies. */
  readonly status: number | undefined;
  /** For `rate_limited`: how long the provider asked us to wait. */
  readonly retryAfterMs: number | undefined;
  /** The provider's own error object (`{message, type, param, code}`), when it answered with one. */
  readonly providerError: ProviderErrorBody | undefined;
  /** The provider's response headers, when it answered. */
  readonly headers: Headers | undefined;

  constructor(
    kind: ProviderErrorKind,
    message: string,
    opts: {
      status?: number;
      retryAfterMs?: number;
      cause?: unknown;
      providerError?: ProviderErrorBody;
      headers?: Headers;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.providerError = opts.providerError;
    this.headers = opts.headers;
  }
}

/** OpenAI's error envelope's inner object. */
export interface ProviderErrorBody {
  message: string;
  type: string | null;
  param: string | null;
  code: string | null;
}

function errorBody(err: APIError): ProviderErrorBody | undefined {
  const e = err.error as Record<string, unknown> | undefined;
  if (!e || typeof e !== 'object' || typeof e.message !== 'string') return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : v == null ? null : String(v));
  return { message: e.message, type: str(e.type), param: str(e.param), code: str(e.code) };
}

export function providerErrorKind(status: number | undefined): ProviderErrorKind {
  if (status === undefined || status >= 500 || status === 408 || status === 409) return 'transient';
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  return status >= 400 ? 'rejected' : 'transient';
}

/**
 * The SDK's errors (`APIError` and its subclasses, connection errors and timeouts included) as a
 * `ProviderError` with the SDK error as its `cause`; anything else (a bug of ours, a storage error
 * while streaming a file) is returned unchanged.
 */
export function toProviderError(err: unknown): unknown {
  if (!(err instanceof APIError)) return err;
  const status = err.status;
  const kind = providerErrorKind(status);
  const detail = errorBody(err);
  const extra = {
    ...(detail ? { providerError: detail } : {}),
    ...(err.headers ? { headers: err.headers } : {}),
  };
  switch (kind) {
    case 'rate_limited':
      return new ProviderError(kind, `provider rate limit (429): ${err.message}`, {
        status,
        retryAfterMs: retryAfterMs(err.headers),
        cause: err,
        ...extra,
      });
    case 'transient':
      return new ProviderError(
        kind,
        status === undefined
          ? `provider unreachable: ${err.message}`
          : `provider error (${status}): ${err.message}`,
        { ...(status === undefined ? {} : { status }), cause: err, ...extra },
      );
    default:
      return new ProviderError(kind, `provider rejected the request (${status}): ${err.message}`, {
        status,
        cause: err,
        ...extra,
      });
  }
}

export async function withProviderErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toProviderError(err);
  }
}

/** A webhook whose signature, timestamp or headers don't check out. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}
