// `stream: true` through the gateway, in both provider dialects: server-sent events chunk by chunk, read
// with the SDK's stream helpers; the provider is always asked for the usage chunk, which is what gets
// metered, also when the caller hangs up mid-stream.
import OpenAI from 'openai';
import type { Stream } from 'openai/streaming';
import { afterAll, describe, expect } from 'vitest';
import { loadConformanceChecker } from '../simulator/support.ts';
import { waitFor } from '../support/context.ts';
import { it, test } from '../support/fixtures.ts';
import { type Gateway, INVOICES, lastReceived, meteredUsage, startGateway } from './support.ts';

const messages = (i = 4): OpenAI.Chat.ChatCompletionMessageParam[] => [
  { role: 'system', content: 'Extract the invoice fields as JSON.' },
  { role: 'user', content: INVOICES[i]!.user },
];

describe.each(['openai', 'azure'] as const)('streaming, %s dialect', (dialect) => {
  let gw: Gateway;

  test.beforeAll(async ({ database, prefix }) => {
    gw = await startGateway({ database, prefix }, dialect);
  });

  afterAll(async () => {
    await gw?.close();
  });

  /** The same request unstreamed: what the stream must add up to. */
  async function reference(extra: Record<string, unknown> = {}) {
    return gw.client.chat.completions.create({ model: gw.model, messages: messages(), ...extra });
  }

  /** The usage rows once there are more than `before` (the stream just made was metered). */
  const meteredAfter = (before: number, timeoutMs: number, what?: string) =>
    waitFor(
      async () => {
        const r = await meteredUsage(gw);
        return r.length > before ? r : undefined;
      },
      timeoutMs,
      what,
    );

  /** A stream of the usual request while the simulator has `faults`; they are cleared afterwards. */
  async function streamWithFaults<T>(
    faults: Parameters<Gateway['sim']['admin']['setFaults']>[0],
    read: (stream: Stream<OpenAI.Chat.ChatCompletionChunk>) => Promise<T>,
  ): Promise<T> {
    gw.sim.admin.setFaults(faults);
    try {
      return await read(
        await gw.client.chat.completions.create({ model: gw.model, messages: messages(), stream: true }),
      );
    } finally {
      gw.sim.admin.setFaults({});
    }
  }

  it('relays chunks the SDK helper assembles, asks the provider for usage and meters it', async () => {
    const whole = await reference();
    const metered = (await meteredUsage(gw)).length;
    const request = { model: gw.model, messages: messages(), seed: 3 };
    const stream = gw.client.chat.completions.stream(request);
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const final = await stream.finalChatCompletion();

    expect(final.choices[0]!.message.content).toBe(whole.choices[0]!.message.content);
    expect(final.model).toBe(gw.model);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(c.model).toBe(gw.model);
    // The caller did not ask for usage: it sees no usage chunk, but the provider was asked for one.
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    expect(lastReceived(gw)).toEqual({ ...request, stream: true, stream_options: { include_usage: true } });
    const rows = await meteredAfter(metered, 5_000);
    expect(rows).toHaveLength(metered + 1);
    expect(rows.at(-1)).toMatchObject({
      prompt_tokens: whole.usage!.prompt_tokens,
      completion_tokens: whole.usage!.completion_tokens,
    });
  });

  it('passes the final usage chunk to a caller that asked for it, meters that usage, chunks in OpenAI’s shape', async () => {
    const metered = (await meteredUsage(gw)).length;
    const stream = await gw.client.chat.completions.create({
      model: gw.model,
      messages: messages(),
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    expect(new Set(chunks.flatMap((c) => c.choices.map((x) => x.index)))).toEqual(new Set([0, 1]));
    const checker = loadConformanceChecker();
    for (const c of chunks) {
      // Azure's opening content-filter chunk has no id, model or object: it is Azure's, not OpenAI's.
      if (dialect === 'azure' && c.id === '') continue;
      expect(
        checker.errorsAgainst('CreateChatCompletionStreamResponse', c).join('; '),
        JSON.stringify(c),
      ).toBe('');
    }
    const rows = await meteredAfter(metered, 5_000);
    expect(rows.at(-1)).toMatchObject({
      prompt_tokens: last.usage!.prompt_tokens,
      completion_tokens: last.usage!.completion_tokens,
    });
  });

  it('streams a tool call the helper assembles', async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'save_invoice',
          parameters: {
            type: 'object',
            properties: { invoice_number: { type: 'string' }, total: { type: 'number' } },
            required: ['invoice_number', 'total'],
            additionalProperties: false,
          },
        },
      },
    ];
    const stream = gw.client.chat.completions.stream({ model: gw.model, messages: messages(), tools });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(JSON.parse(call.function.arguments)).toEqual({ invoice_number: '1004', total: 50 });
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it('meters a stream the caller aborted, from what the provider produced', async () => {
    const whole = await reference();
    const metered = (await meteredUsage(gw)).length;
    await streamWithFaults({ streamDelayMs: 25 }, async (stream) => {
      let received = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 2) {
          stream.controller.abort();
          break;
        }
      }
      expect(received).toBe(2);
      // The answer has more pieces than the caller read: it left mid-stream.
      expect((whole.choices[0]!.message.content ?? '').split(/\s+|(?<=,)/).length).toBeGreaterThan(2);
      const rows = await meteredAfter(metered, 10_000, 'the aborted stream metered');
      expect(rows).toHaveLength(metered + 1);
      expect(rows.at(-1)).toMatchObject({
        prompt_tokens: whole.usage!.prompt_tokens,
        completion_tokens: whole.usage!.completion_tokens,
      });
    });
  });

  it('ends the stream with an error event when the provider fails mid-stream, and charges nothing', async () => {
    const metered = (await meteredUsage(gw)).length;
    await streamWithFaults({ streamBreakAfter: 3 }, async (stream) => {
      const seen: string[] = [];
      const err = await (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      // The OpenAI profile maps the broken socket to a transient provider error, which the event names.
      expect((err as Error).message).toMatch(/provider stream broke/);
      expect(seen.length).toBeGreaterThan(0);
    });
    // No usage chunk came: nothing is charged (the provider's own failure).
    expect(await meteredUsage(gw)).toHaveLength(metered);
  });

  it('answers a refusal before the stream starts as an ordinary error', async () => {
    const err = await gw.client.chat.completions
      .create({
        model: gw.model,
        messages: messages(),
        stream: true,
        tools: [{ type: 'custom', custom: { name: 'grep' } }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ param: 'tools[0]' });
  });
});
