import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * `/livez`: the process runs. `/readyz`: it can do work (checks answer and it is not shutting down);
 * 503 with the failing checks otherwise. `/metrics`: Prometheus text.
 */
export async function startHealthServer(opts: {
  port: number;
  registry: Registry;
  ready: () => Promise<{ ok: boolean; checks: Record<string, string> }>;
}): Promise<HealthServer> {
  const server = createServer(async (req, res) => {
    try {
      if (req.url === '/livez') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else if (req.url === '/readyz') {
        const state = await opts.ready();
        res
          .writeHead(state.ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: state.ok ? 'ready' : 'not ready', checks: state.checks }));
      } else if (req.url === '/metrics') {
        const body = await opts.registry.metrics();
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      }
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '0.0.0.0', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
