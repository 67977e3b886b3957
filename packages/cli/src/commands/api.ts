import { runApi } from '@tuneline/api';
import { type Command, parseOptions, UsageError } from '../command.ts';
import { devStackUsage, withDevStack } from '../stack.ts';

export const apiCommand: Command = {
  name: 'api',
  summary: 'Serve the HTTP API, the hub page (/hub), API docs (/docs) and the queue dashboard',
  usage: [
    'tuneline api [--port P]',
    '',
    'Uses DATABASE_URL, REDIS_URL, QUEUE_PREFIX, API_PORT (default 8080), API_HOST, ADMIN_API_KEY,',
    'API_BODY_LIMIT_BYTES and the provider settings (PROVIDER, OPENAI_API_KEY, SIMULATOR_URL, ...).',
    devStackUsage('DATABASE_URL or REDIS_URL'),
  ].join('\n'),
  async run(argv) {
    const { values } = parseOptions(argv, { port: { type: 'string' } });
    let port: number | undefined;
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0-65535');
    }
    await runApi(await withDevStack(process.env, { redis: true, schema: true }), port);
    return 0;
  },
};
