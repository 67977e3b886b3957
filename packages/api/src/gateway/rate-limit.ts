import { ProviderError } from '@tuneline/provider';
import type { FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { HttpError } from '../http.ts';

/**
 * Per-license rate limit of the gateway (issue 19.5): requests and tokens per minute, each a token
 * bucket refilled continuously (so a burst of a full minute's allowance is possible after a quiet
 * minute, like OpenAI's limits). Tokens are counted at admission as OpenAI does: the call's worst case
 * (prompt counted locally + its maximum completion). The buckets live in Redis (one hash per license,
 * one Lua script per check), so every API process shares them; the script uses Redis's clock.
 *
 * If Redis does not answer within `timeoutMs`, the call is let through (and counted): the limit
 * protects the provider quota, it must not take the gateway down with Redis.
 */

export interface RateLimitSettings {
  /** Requests per minute per license; 0 turns this limit off. */
  requestsPerMinute: number;
  /** Tokens per minute per license (worst case at admission); 0 turns this limit off. */
  tokensPerMinute: number;
  /** Longest wait for Redis before letting the call through. */
  timeoutMs?: number;
}

export type RateVerdict =
  | { ok: true; unchecked?: boolean }
  | { ok: false; limit: 'requests' | 'tokens'; retryAfterMs: number; limitValue: number };

// KEYS[1] the license's bucket; ARGV: requests/min, tokens/min, this call's tokens. Returns
// {1} when admitted, else {0, wait ms, 'requests'|'tokens'}.
const SCRIPT = `
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
if tpm > 0 and cost > tpm then cost = tpm end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local r = tonumber(h[1]) or rpm
local k = tonumber(h[2]) or tpm
local at = tonumber(h[3]) or now
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
r = math.min(rpm, r + elapsed * rpm / 60000)
k = math.min(tpm, k + elapsed * tpm / 60000)
local waitR = 0
local waitT = 0
if rpm > 0 and r < 1 then waitR = (1 - r) * 60000 / rpm end
if tpm > 0 and k < cost then waitT = (cost - k) * 60000 / tpm end
if waitR > 0 or waitT > 0 then
  redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(k), 'at', now)
  redis.call('PEXPIRE', KEYS[1], 120000)
  if waitR >= waitT then return {0, math.ceil(waitR), 'requests'} end
  return {0, math.ceil(waitT), 'tokens'}
end
if rpm > 0 then r = r - 1 end
if tpm > 0 then k = k - cost end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(k), 'at', now)
redis.call('PEXPIRE', KEYS[1], 120000)
return {1}
`;

interface LimitCommand {
  tunelineGatewayLimit(
    key: string,
    rpm: number,
    tpm: number,
    cost: number,
  ): Promise<[number, number?, string?]>;
}

export class GatewayRateLimiter {
  private readonly redis: LimitCommand;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    readonly settings: RateLimitSettings,
    private readonly onUnchecked?: (err: Error) => void,
  ) {
    if (!(redis as unknown as Partial<LimitCommand>).tunelineGatewayLimit) {
      redis.defineCommand('tunelineGatewayLimit', { numberOfKeys: 1, lua: SCRIPT });
    }
    this.redis = redis as unknown as LimitCommand;
  }

  get enabled(): boolean {
    return this.settings.requestsPerMinute > 0 || this.settings.tokensPerMinute > 0;
  }

  /** Takes one request and `tokens` tokens from the license's buckets, or says how long to wait. */
  async take(licenseId: string, tokens: number): Promise<RateVerdict> {
    if (!this.enabled) return { ok: true };
    const { requestsPerMinute, tokensPerMinute } = this.settings;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.redis.tunelineGatewayLimit(
          `${this.prefix}:gateway-rate:${licenseId}`,
          requestsPerMinute,
          tokensPerMinute,
          tokens,
        ),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('rate limiter: Redis did not answer')),
            this.settings.timeoutMs ?? 250,
          );
        }),
      ]);
      if (answer[0] === 1) return { ok: true };
      const limit = answer[2] === 'tokens' ? 'tokens' : 'requests';
      return {
        ok: false,
        limit,
        retryAfterMs: Number(answer[1] ?? 1_000),
        limitValue: limit === 'tokens' ? tokensPerMinute : requestsPerMinute,
      };
    } catch (err) {
      this.onUnchecked?.(err as Error);
      return { ok: true, unchecked: true };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}

/** The 429 of a refused call: OpenAI's envelope (`type` requests or tokens), `Retry-After` in seconds. */
export function rateLimitedError(
  reply: FastifyReply,
  verdict: Extract<RateVerdict, { ok: false }>,
): HttpError {
  reply.header('retry-after', String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))));
  reply.header('retry-after-ms', String(verdict.retryAfterMs));
  reply.header(`x-ratelimit-limit-${verdict.limit}`, String(verdict.limitValue));
  reply.header(`x-ratelimit-remaining-${verdict.limit}`, '0');
  return new HttpError(
    429,
    `Rate limit reached for this license on ${verdict.limit} per minute: limit ${verdict.limitValue}. Please try again in ${(verdict.retryAfterMs / 1000).toFixed(3)}s.`,
    undefined,
    { type: verdict.limit, param: null, code: 'rate_limit_exceeded' },
  );
}

/** The headers of a provider's 429 that go back to the caller as they came. */
const PASSED_HEADERS = /^(retry-after|retry-after-ms|x-ratelimit-.*)$/i;

/** Copies a provider 429's rate-limit headers onto the reply (the status and envelope follow from the error). */
export function passProviderRateLimit(reply: FastifyReply, err: unknown): void {
  if (!(err instanceof ProviderError) || err.kind !== 'rate_limited' || !err.headers) return;
  for (const [name, value] of err.headers.entries()) if (PASSED_HEADERS.test(name)) reply.header(name, value);
}
