// `tuneline sim` flag parsing (in-process: starting the whole CLI per test costs many seconds).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../packages/cli/src/command.ts';
import { parseSimArgs, simCommand } from '../../packages/cli/src/commands/sim.ts';

describe('tuneline sim flags', () => {
  it('parses every flag into simulator options', () => {
    const opts = parseSimArgs([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--seed',
      '9',
      '--api-key',
      'sk-x',
      '--speed',
      '500',
      '--webhook-url',
      'http://127.0.0.1:9/hooks',
      '--webhook-secret',
      'whsec_c2VjcmV0',
      '--fault-429',
      '0.1',
      '--fault-500',
      '0.2',
      '--fault-drop',
      '0.05',
      '--fault-latency-ms',
      '20',
      '--fault-duplicate-webhook',
      '0.5',
      '--fault-lost-create',
      '1',
      '--fault-lost-create-mode',
      'drop',
      '--retry-after',
      '3',
    ]);
    expect(opts).toMatchObject({
      port: 0,
      seed: 9,
      apiKey: 'sk-x',
      speed: 500,
      webhookUrl: 'http://127.0.0.1:9/hooks',
      webhookSecret: 'whsec_c2VjcmV0',
      faults: {
        rate429: 0.1,
        rate500: 0.2,
        dropRate: 0.05,
        latencyMs: 20,
        duplicateWebhookRate: 0.5,
        lostCreateRate: 1,
        lostCreateMode: 'drop',
        retryAfterSeconds: 3,
      },
    });
    expect(parseSimArgs([])).toMatchObject({
      port: 4010,
      seed: 1,
      apiKey: 'sk-sim',
      speed: 1,
      faults: { rate429: 0 },
    });
  });

  it('rejects bad flags with a UsageError naming them', async () => {
    await expect(simCommand.run(['--fault-429', '2'])).rejects.toThrow(/--fault-429: .*<=1/);
    expect(() => parseSimArgs(['--fault-drop', 'x'])).toThrow(UsageError);
    expect(() => parseSimArgs(['--speed', '0'])).toThrow(/--speed/);
    expect(() => parseSimArgs(['--webhook-url', 'http://127.0.0.1:9/x'])).toThrow(
      '--webhook-url needs --webhook-secret',
    );
    expect(() =>
      parseSimArgs(['--webhook-url', 'http://127.0.0.1:9/x', '--webhook-secret', 'plain']),
    ).toThrow(/whsec_/);
    expect(() => parseSimArgs(['--nope'])).toThrow(UsageError);
    expect(() => parseSimArgs(['--fault-lost-create-mode', 'explode'])).toThrow(UsageError);
  });
});
