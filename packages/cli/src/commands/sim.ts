import { faultConfigSchema, startSimulator } from '@tuneline/simulator';
import { z } from 'zod';
import { type Command, parseOptions, UsageError } from '../command.ts';

const usage = `tuneline sim [options]

Runs the OpenAI-compatible fine-tuning simulator until SIGINT/SIGTERM.
OpenAI dialect at http://HOST:PORT/v1, Azure OpenAI dialect at http://HOST:PORT/openai,
admin at /_sim/state (GET) and /_sim/faults (POST).

Options:
  --port N                      port to listen on (default 4010; 0 picks a free port)
  --host H                      interface to bind (default 127.0.0.1)
  --seed N                      seed for ids and faults (default 1)
  --api-key K                   the only accepted API key (default sk-sim)
  --speed X                     time multiplier (default 1; 1000 = a 20-minute job in 1.2 s)
  --webhook-url U               POST fine_tuning.job.* webhooks here
  --webhook-secret S            whsec_... secret to sign them with (needed with --webhook-url)
  --fault-429 R                 share of requests answered 429 (0..1)
  --fault-500 R                 share of requests answered 500 (0..1)
  --fault-drop R                share of requests whose connection is dropped (0..1)
  --fault-latency-ms N          latency added to every request
  --fault-duplicate-webhook R   share of webhook events delivered twice (0..1)
  --fault-lost-create R         share of job creations whose answer is lost (0..1)
  --fault-lost-create-mode M    500 (default) or drop
  --retry-after S               Retry-After seconds sent with 429s (default 1)`;

const optionsSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(4010),
  host: z.string().min(1).default('127.0.0.1'),
  seed: z.coerce.number().int().default(1),
  apiKey: z.string().min(1).default('sk-sim'),
  speed: z.coerce.number().positive().default(1),
  webhookUrl: z.url().optional(),
  webhookSecret: z.string().startsWith('whsec_', { message: 'must start with whsec_' }).optional(),
});

const rate = z.coerce.number().min(0).max(1);

/** Parses `tuneline sim` flags into simulator options; UsageError names the bad flag. */
export function parseSimArgs(argv: string[]) {
  const values = parseOptions(
    argv,
    Object.fromEntries(
      [
        'port',
        'host',
        'seed',
        'api-key',
        'speed',
        'webhook-url',
        'webhook-secret',
        'fault-429',
        'fault-500',
        'fault-drop',
        'fault-latency-ms',
        'fault-duplicate-webhook',
        'fault-lost-create',
        'fault-lost-create-mode',
        'retry-after',
      ].map((name) => [name, { type: 'string' as const }]),
    ),
  ).values as Record<string, string | undefined>;
  const options = optionsSchema.safeParse({
    port: values.port,
    host: values.host,
    seed: values.seed,
    apiKey: values['api-key'],
    speed: values.speed,
    webhookUrl: values['webhook-url'],
    webhookSecret: values['webhook-secret'],
  });
  if (!options.success) {
    throw new UsageError(
      options.error.issues
        .map((i) => `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}`)
        .join('; '),
    );
  }
  if (options.data.webhookUrl && !options.data.webhookSecret)
    throw new UsageError('--webhook-url needs --webhook-secret');
  const flag = (name: string, schema: z.ZodType<number> = rate): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new UsageError(`--${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data;
  };
  const faults = faultConfigSchema.safeParse({
    rate429: flag('fault-429'),
    rate500: flag('fault-500'),
    dropRate: flag('fault-drop'),
    latencyMs: flag('fault-latency-ms', z.coerce.number().int().min(0)),
    duplicateWebhookRate: flag('fault-duplicate-webhook'),
    lostCreateRate: flag('fault-lost-create'),
    lostCreateMode: values['fault-lost-create-mode'],
    retryAfterSeconds: flag('retry-after', z.coerce.number().min(0)),
  });
  if (!faults.success)
    throw new UsageError(
      `fault options: ${faults.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return { ...options.data, faults: faults.data };
}

export const simCommand: Command = {
  name: 'sim',
  summary: 'Run the OpenAI/Azure-compatible fine-tuning simulator (deterministic, with fault injection)',
  usage,
  async run(argv) {
    let opts: ReturnType<typeof parseSimArgs>;
    try {
      opts = parseSimArgs(argv);
    } catch (err) {
      if (err instanceof z.ZodError)
        throw new UsageError(`bad rate: ${err.issues[0]?.message ?? err.message}`);
      throw err;
    }
    const sim = await startSimulator(opts);
    process.stdout.write(
      `${JSON.stringify({ msg: 'simulator listening', url: sim.url, azureEndpoint: sim.baseUrl, seed: opts.seed, speed: opts.speed, apiKey: sim.apiKey })}\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await sim.close();
    process.stdout.write(`${JSON.stringify({ msg: 'simulator stopped' })}\n`);
    return 0;
  },
};
