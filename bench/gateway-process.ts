// One process of the gateway bench (bench/gateway.bench.ts), so that each one's CPU can be read apart:
//   sim            the simulator
//   api            the Tuneline API (the gateway), from the environment like `tuneline api`
//   proxy <url>    a bare pass-through proxy: Node http, keep-alive agent, no auth, no metering
// Prints one line `READY <url>` once listening, and stops on SIGTERM.
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startApi } from '@tuneline/api';
import { startSimulator } from '@tuneline/simulator';

const [mode, target] = process.argv.slice(2);

async function main(): Promise<void> {
  let stop: () => Promise<void>;
  if (mode === 'sim') {
    const sim = await startSimulator({ seed: 3, speed: 100_000 });
    process.stdout.write(`READY ${sim.url}\n`);
    stop = () => sim.close();
  } else if (mode === 'api') {
    const api = await startApi(process.env, 0);
    process.stdout.write(`READY ${api.address}\n`);
    stop = api.stop;
  } else if (mode === 'proxy' && target) {
    const upstream = new URL(target);
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const server = createServer((req, res) => {
      // /v1/... on the proxy is /v1/... at the simulator (its base URL ends in /v1).
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
          agent,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', (err) => {
        res.writeHead(502).end(String(err));
      });
      req.pipe(out);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    process.stdout.write(`READY http://127.0.0.1:${(server.address() as AddressInfo).port}/v1\n`);
    stop = () => new Promise((r) => server.close(() => r()));
  } else {
    throw new Error(`usage: gateway-process.ts sim | api | proxy <simulator url>`);
  }
  process.once('SIGTERM', () => {
    void stop().finally(() => process.exit(0));
  });
}

await main();
