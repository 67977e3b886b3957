// The simulator's own chat-completions protocol, without the gateway in between: it refuses what it
// does not know like OpenAI, honours the parameters it claims to, streams in both dialects, and records
// every request body it received.
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConformanceChecker, type RecordingSimulator, startRecordingSimulator } from './support.ts';

const BASE = 'gpt-4o-mini-2024-07-18';
let sim: RecordingSimulator;
let openai: OpenAI;
let azure: AzureOpenAI;

beforeAll(async () => {
  sim = await startRecordingSimulator({ seed: 11 });
  openai = new OpenAI({ baseURL: sim.url, apiKey: sim.apiKey, maxRetries: 0 });
  azure = new AzureOpenAI({
    endpoint: sim.baseUrl,
    apiKey: sim.apiKey,
    apiVersion: '2025-04-01-preview',
    maxRetries: 0,
  });
});

afterAll(async () => {
  await sim?.close();
});

const messages = [
  { role: 'system' as const, content: 'Extract the invoice fields as JSON.' },
  { role: 'user' as const, content: 'Invoice 77 from Acme, total 12.50 EUR' },
];

describe('simulator chat protocol', () => {
  it('refuses unknown and malformed parameters in the OpenAI envelope, and records what it received', async () => {
    const err = await openai.chat.completions
      .create({ model: BASE, messages, temprature: 1 } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toEqual({
      message: 'Unrecognized request argument supplied: temprature',
      type: 'invalid_request_error',
      param: 'temprature',
      code: 'unknown_parameter',
    });
    const bad = await openai.chat.completions
      .create({ model: BASE, messages, n: 0 })
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, param: 'n' });
    const received = (await (await fetch(`${sim.baseUrl}/_sim/chat-requests`)).json()) as {
      data: Array<{ dialect: string; body: unknown }>;
    };
    expect(received.data.map((r) => r.body)).toEqual([
      { model: BASE, messages, temprature: 1 },
      { model: BASE, messages, n: 0 },
    ]);
  });

  it('answers json_schema in the schema, stop before the stop sequence, n choices', async () => {
    const schema = {
      type: 'object',
      properties: {
        total: { type: 'number' },
        paid: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1 },
      },
      required: ['total', 'paid', 'tags'],
      additionalProperties: false,
    };
    const res = await openai.chat.completions.create({
      model: BASE,
      messages,
      n: 3,
      response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema } },
    });
    expect(res.choices).toHaveLength(3);
    const value = JSON.parse(res.choices[2]!.message.content!);
    expect(Object.keys(value).sort()).toEqual(['paid', 'tags', 'total']);
    expect(value.total).toBeTypeOf('number');
    expect(value.tags).toHaveLength(1);
    const whole = await openai.chat.completions.create({ model: BASE, messages });
    const text = whole.choices[0]!.message.content!;
    const stop = text.slice(5, 8);
    const cut = await openai.chat.completions.create({ model: BASE, messages, stop });
    expect(cut.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.usage!.completion_tokens).toBeLessThan(whole.usage!.completion_tokens);
  });

  it.each(['openai', 'azure'] as const)(
    'streams in the %s dialect, adding up to the unstreamed answer',
    async (dialect) => {
      const client = dialect === 'azure' ? azure : openai;
      const whole = await client.chat.completions.create({ model: BASE, messages, logprobs: true });
      const stream = await client.chat.completions.create({
        model: BASE,
        messages,
        logprobs: true,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
      for await (const c of stream) chunks.push(c);
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      expect(text).toBe(whole.choices[0]!.message.content);
      expect(chunks.at(-1)!.usage).toEqual(whole.usage);
      expect(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop')).toHaveLength(1);
      if (dialect === 'azure')
        expect(chunks[0]).toMatchObject({ choices: [], prompt_filter_results: [{ prompt_index: 0 }] });
      const checker = loadConformanceChecker();
      for (const c of chunks.filter((x) => x.id !== ''))
        expect(checker.errorsAgainst('CreateChatCompletionStreamResponse', c).join('; ')).toBe('');
      expect(sim.admin.chatRequests().at(-1)).toMatchObject({ dialect, model: BASE });
    },
  );
});
