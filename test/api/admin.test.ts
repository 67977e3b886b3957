import { createApiKey } from '@tuneline/api';
import { getBalance } from '@tuneline/ledger';
import { describe, expect } from 'vitest';
import { ADMIN_KEY, type ApiContext, it } from './support.ts';

/** The admin routes: licenses, keys, credit grants, the queue dashboard. */

let { t, a, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, a, call } = api);
});

describe('admin', () => {
  it('creates a license, a key that works, and grants credits idempotently', async () => {
    const created = await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'lic-new', name: 'New Co' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: 'lic-new', name: 'New Co' });
    expect(
      (await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'lic-new', name: 'Again' })).status,
    ).toBe(409);

    const key = await call('POST', '/v1/admin/licenses/lic-new/keys', ADMIN_KEY);
    expect(key.status).toBe(201);
    expect(key.json.key).toMatch(/^tl_/);
    const who = await call('GET', '/v1/license', key.json.key);
    expect(who.json).toMatchObject({ id: 'lic-new', name: 'New Co' });

    const grant = { grantId: 'welcome', amount: 5000, memo: 'welcome' };
    const g1 = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, grant);
    expect(g1.status).toBe(200);
    expect(g1.json.available).toBe('5000');
    const g2 = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, grant);
    expect(g2.json.available).toBe('5000');
    const conflict = await call('POST', '/v1/admin/licenses/lic-new/credits', ADMIN_KEY, {
      ...grant,
      amount: 6000,
    });
    expect(conflict.status).toBe(409);
    expect((await getBalance(t.db, 'lic-new')).available).toBe(5000n);
  });

  it('accepts admin keys stored hashed in api_keys, and no longer once revoked', async () => {
    const stored = await createApiKey(t.db, null);
    const res = await call('POST', '/v1/admin/licenses', stored.key, { name: 'Via stored key' });
    expect(res.status).toBe(201);
    expect(res.json.id).toMatch(/^lic-/);
    await t.db.updateTable('api_keys').set({ revoked_at: new Date() }).where('id', '=', stored.id).execute();
    expect((await call('POST', '/v1/admin/licenses', stored.key, { name: 'Again' })).status).toBe(401);
  });

  it('answers 400 naming fields and 404 for unknown licenses', async () => {
    const bad = await call('POST', '/v1/admin/licenses', ADMIN_KEY, { id: 'has space', name: '' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.fields.map((f: { field: string }) => f.field).sort()).toEqual(['id', 'name']);
    const badGrant = await call('POST', '/v1/admin/licenses/lic-a/credits', ADMIN_KEY, {
      grantId: 'g',
      amount: -5,
    });
    expect(badGrant.status).toBe(400);
    expect(badGrant.json.error.fields[0].field).toBe('amount');
    expect((await call('POST', '/v1/admin/licenses/nope/keys', ADMIN_KEY)).status).toBe(404);
    expect(
      (await call('POST', '/v1/admin/licenses/nope/credits', ADMIN_KEY, { grantId: 'g', amount: 1 })).status,
    ).toBe(404);
  });

  it('serves the queue dashboard only with the admin key', async () => {
    const anonymous = await call('GET', '/admin/queues');
    expect(anonymous.json.error.message).toMatch(/missing API key/);
    expect(anonymous.status).toBe(401);
    expect((await call('GET', '/admin/queues', a.key)).status).toBe(401);
    const ok = await call('GET', '/admin/queues', ADMIN_KEY);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/html/);
    const basic = Buffer.from(`ops:${ADMIN_KEY}`).toString('base64');
    expect(
      (await call('GET', '/admin/queues', undefined, undefined, { authorization: `Basic ${basic}` })).status,
    ).toBe(200);
  });
});
