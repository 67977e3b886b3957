import { describe, expect } from 'vitest';
import { ADMIN_KEY, type ApiContext, it } from './support.ts';

/** API keys: who may call what. */

let { t, a, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, a, call } = api);
});

describe('authentication', () => {
  it('refuses a missing, unknown or wrong-kind key with 401', async () => {
    expect((await call('GET', '/v1/datasets')).status).toBe(401);
    expect((await call('GET', '/v1/datasets', 'tl_not-a-key')).status).toBe(401);
    expect((await call('GET', '/v1/datasets', ADMIN_KEY)).status).toBe(401);
    expect((await call('POST', '/v1/admin/licenses', a.key, { name: 'x' })).status).toBe(401);
    const res = await call('GET', '/v1/credits', undefined, undefined, {
      authorization: 'Basic Zm9vOmJhcg==',
    });
    expect(res.status).toBe(401);
    expect(res.json.error.message).toMatch(/invalid/);
  });

  it('stores keys hashed, never in clear', async () => {
    const rows = await t.db.selectFrom('api_keys').select(['key_hash', 'key_prefix']).execute();
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) {
      expect(r.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.key_hash).not.toBe(a.key);
    }
  });
});
