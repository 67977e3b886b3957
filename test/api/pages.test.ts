import { buildApi } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import { describe, expect } from 'vitest';
import { type ApiContext, documents, it, request } from './support.ts';

/** Body limit, the hub and docs pages, unknown routes. */

let { t, redis, prefix, a, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, redis, prefix, a, call } = api);
});

describe('limits and pages', () => {
  it('limits the request body size', async () => {
    const small = await buildApi({
      db: t.db,
      redis,
      queuePrefix: prefix,
      catalogue: defaultCatalogue,
      bodyLimit: 2048,
    });
    try {
      const res = await small.inject({
        method: 'POST',
        url: '/v1/fine-tune-requests',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
        payload: JSON.stringify(request('big', { documents: documents(60) })),
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().error.message).toBeTruthy();
    } finally {
      await small.close();
    }
  });

  it('serves the hub, the docs page and 404s unknown routes as JSON', async () => {
    const hub = await call('GET', '/hub');
    expect(hub.status).toBe(200);
    expect(hub.text).toContain('<label for="license-key">');
    expect((await call('GET', '/hub/hub.js')).headers['content-type']).toMatch(/javascript/);
    const docs = await call('GET', '/docs');
    expect(docs.text).toContain('/docs/docs.js');
    const missing = await call('GET', '/v1/nothing-here', a.key);
    expect(missing.status).toBe(404);
    expect(missing.json.error.message).toMatch(/no route/);
  });
});
