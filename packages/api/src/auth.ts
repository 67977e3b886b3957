import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Executor, findApiKeyHolder, insertApiKey } from '@tuneline/db';
import type { FastifyRequest } from 'fastify';
import { type Auth, HttpError } from './http.ts';

/** Who is calling: a license (its key) or ops (an admin key). */
export type Caller =
  /** `keyPrefix`: the key's first characters, as stored (who switched an alias). */
  { role: 'license'; licenseId: string; keyPrefix?: string } | { role: 'admin' } | { role: 'none' };

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new key: `tl_` + 32 random bytes. Only its hash and first characters are stored. */
export function generateKey(): { key: string; hash: string; prefix: string } {
  const key = `tl_${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashKey(key), prefix: key.slice(0, 10) };
}

/** Stores a new key for a license (or an admin key when licenseId is null) and returns it, once. */
export async function createApiKey(
  db: Executor,
  licenseId: string | null,
): Promise<{ id: string; key: string; keyPrefix: string }> {
  const { key, hash, prefix } = generateKey();
  const id = await insertApiKey(db, { licenseId, keyHash: hash, keyPrefix: prefix });
  return { id, key, keyPrefix: prefix };
}

/** `Authorization: Bearer <key>`, or Basic with the key as password (browsers, for the dashboard). */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  return undefined;
}

export function makeAuthenticator(
  db: Executor,
  adminKey: string | undefined,
  /** Who holds a key hash (the gateway's cache wraps it); straight from api_keys by default. */
  holderOf: (keyHash: string) => ReturnType<typeof findApiKeyHolder> = (h) => findApiKeyHolder(db, h),
) {
  const adminHash = adminKey ? Buffer.from(hashKey(adminKey), 'hex') : undefined;
  return async (request: FastifyRequest, auth: Auth): Promise<Caller> => {
    if (auth === 'none') return { role: 'none' };
    const key = presentedKey(request);
    if (!key) throw new HttpError(401, 'missing API key: send "Authorization: Bearer <key>"');
    const hash = hashKey(key);
    let caller: Caller | undefined;
    if (adminHash && timingSafeEqual(adminHash, Buffer.from(hash, 'hex'))) caller = { role: 'admin' };
    else {
      const holder = await holderOf(hash);
      if (holder?.role === 'admin') caller = { role: 'admin' };
      else if (holder?.role === 'license' && holder.licenseId)
        caller = { role: 'license', licenseId: holder.licenseId, keyPrefix: holder.keyPrefix };
    }
    if (!caller) throw new HttpError(401, 'invalid or revoked API key');
    if (caller.role !== auth) {
      // A key of the wrong kind is as good as no key for this route.
      throw new HttpError(
        401,
        auth === 'admin' ? 'this route needs an admin key' : 'this route needs a license key',
      );
    }
    return caller;
  };
}

export function licenseOf(caller: Caller): string {
  if (caller.role !== 'license') throw new HttpError(401, 'this route needs a license key');
  return caller.licenseId;
}

/** Who did it, for an audit trail: `key:<prefix>` of the caller's key. */
export function actorOf(caller: Caller): string {
  return caller.role === 'license' && caller.keyPrefix ? `key:${caller.keyPrefix}` : caller.role;
}
