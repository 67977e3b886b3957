import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** The hub and the API docs: plain files next to this module, read once, no build step. */
const dir = new URL('./public/', import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/hub': { file: 'hub.html', type: 'text/html; charset=utf-8' },
  '/hub/hub.js': { file: 'hub.js', type: 'text/javascript; charset=utf-8' },
  '/hub/hub-lists.js': { file: 'hub-lists.js', type: 'text/javascript; charset=utf-8' },
  '/hub/hub-evaluation.js': { file: 'hub-evaluation.js', type: 'text/javascript; charset=utf-8' },
  '/hub/hub-lifecycle.js': { file: 'hub-lifecycle.js', type: 'text/javascript; charset=utf-8' },
  '/hub/hub.css': { file: 'hub.css', type: 'text/css; charset=utf-8' },
  '/docs': { file: 'docs.html', type: 'text/html; charset=utf-8' },
  '/docs/docs.js': { file: 'docs.js', type: 'text/javascript; charset=utf-8' },
};

export function registerStaticPages(app: FastifyInstance): void {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(new URL(file, dir));
    app.get(url, async (_request, reply) =>
      reply
        .header('content-type', type)
        .header('cache-control', 'no-cache')
        // Everything the pages load is same-origin; nothing else may run.
        .header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'")
        .send(body),
    );
  }
  app.get('/', async (_request, reply) => reply.redirect('/hub'));
}
