// The whole chat-completions protocol through the gateway, with the official `openai` SDK: every
// parameter reaches the simulator intact (checked by what it received), the answer comes back as the
// provider gave it, and bad parameters are refused in OpenAI's own envelope.
import Ajv2020Module from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import { afterAll, describe, expect } from 'vitest';
import { makeDataset, makeFineTune } from '../api/fixtures.ts';
import { loadConformanceChecker } from '../simulator/support.ts';
import { it, test } from '../support/fixtures.ts';
import { type Gateway, INVOICES, lastReceived, meteredUsage, startGateway } from './support.ts';

const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ??
  Ajv2020Module) as typeof Ajv2020Module.default;

let gw: Gateway;

test.beforeAll(async ({ database, prefix }) => {
  gw = await startGateway({ database, prefix }, 'openai');
});

afterAll(async () => {
  await gw?.close();
});

const document = INVOICES[3]!.user;
const messages = (): OpenAI.Chat.ChatCompletionMessageParam[] => [
  { role: 'system', content: 'Extract the invoice fields as JSON.' },
  { role: 'user', content: document },
];

const invoiceSchema = {
  type: 'object',
  properties: {
    invoice_number: { type: 'string' },
    total: { type: 'number' },
    currency: { type: 'string', enum: ['EUR', 'USD'] },
    lines: {
      type: 'array',
      items: {
        type: 'object',
        properties: { amount: { type: 'number' } },
        required: ['amount'],
        additionalProperties: false,
      },
    },
    due: { anyOf: [{ type: 'string' }, { type: 'null' }] },
  },
  required: ['invoice_number', 'total', 'currency', 'lines', 'due'],
  additionalProperties: false,
};

describe('parameters reach the provider intact', () => {
  it('json_schema strict: the request arrives as sent and the answer is in the schema', async () => {
    const request: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
      model: gw.model,
      messages: messages(),
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'invoice', strict: true, schema: invoiceSchema },
      },
      temperature: 0,
      top_p: 0.9,
      max_completion_tokens: 200,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      user: 'capture-app-42',
      metadata: { document: 'inv-1003' },
    };
    const res = await gw.client.chat.completions.create(request);
    expect(lastReceived(gw)).toEqual(request);
    const answer = JSON.parse(res.choices[0]!.message.content!);
    const validate = new Ajv2020({ strict: false }).compile(invoiceSchema);
    expect(validate(answer), JSON.stringify(validate.errors)).toBe(true);
    // Filled from what the model extracted where it fits.
    expect(answer).toMatchObject({ invoice_number: '1003', total: 40 });
  });

  it('json_object: the answer is a JSON object', async () => {
    const request = {
      model: gw.model,
      messages: messages(),
      response_format: { type: 'json_object' as const },
    };
    const res = await gw.client.chat.completions.create(request);
    expect(lastReceived(gw)).toEqual(request);
    expect(JSON.parse(res.choices[0]!.message.content!)).toBeTypeOf('object');
  });

  it('tools: a tool call comes back, and the tool result round trip ends in an answer', async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'save_invoice',
          description: 'Stores the extracted invoice',
          strict: true,
          parameters: {
            type: 'object',
            properties: { invoice_number: { type: 'string' }, total: { type: 'number' } },
            required: ['invoice_number', 'total'],
            additionalProperties: false,
          },
        },
      },
    ];
    const request = {
      model: gw.model,
      messages: messages(),
      tools,
      tool_choice: 'auto' as const,
      parallel_tool_calls: false,
    };
    const res = await gw.client.chat.completions.create(request);
    expect(lastReceived(gw)).toEqual(request);
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call.type).toBe('function');
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('save_invoice');
    expect(JSON.parse(call.function.arguments)).toEqual({ invoice_number: '1003', total: 40 });

    const followUp = {
      model: gw.model,
      tools,
      messages: [
        ...messages(),
        choice.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: 'tool' as const, tool_call_id: call.id, content: '{"saved":true}' },
      ],
    };
    const done = await gw.client.chat.completions.create(followUp);
    expect(lastReceived(gw)).toEqual(followUp);
    expect(done.choices[0]!.finish_reason).toBe('stop');
    expect(done.choices[0]!.message.content).toBeTruthy();
  });

  it('seed, stop and n: 2 arrive as sent and are honoured', async () => {
    const request = { model: gw.model, messages: messages(), seed: 42, n: 2, stop: ['"total"'] };
    const first = await gw.client.chat.completions.create(request);
    expect(lastReceived(gw)).toEqual(request);
    const second = await gw.client.chat.completions.create(request);
    expect(first.choices).toHaveLength(2);
    expect(first.choices.map((c) => c.index)).toEqual([0, 1]);
    // Same seed, same answer; the stop sequence ends it before `"total"`.
    expect(second.choices.map((c) => c.message.content)).toEqual(first.choices.map((c) => c.message.content));
    const content = first.choices[0]!.message.content!;
    expect(content).not.toContain('"total"');
    expect(content.length).toBeGreaterThan(0);
    expect(first.choices[0]!.finish_reason).toBe('stop');
    // Both choices are metered: the provider's usage counts every choice's tokens.
    const rows = await meteredUsage(gw);
    expect(rows.at(-1)).toMatchObject({
      prompt_tokens: first.usage!.prompt_tokens,
      completion_tokens: first.usage!.completion_tokens,
    });
  });

  it('logprobs, max_tokens and the other parameters pass too', async () => {
    const request = {
      model: gw.model,
      messages: messages(),
      logprobs: true,
      top_logprobs: 2,
      max_tokens: 5,
      logit_bias: { '1734': -10 },
      store: false,
      service_tier: 'default' as const,
    };
    const res = await gw.client.chat.completions.create(request);
    expect(lastReceived(gw)).toEqual(request);
    const lp = res.choices[0]!.logprobs!.content!;
    expect(lp.length).toBeGreaterThan(0);
    expect(lp[0]!.top_logprobs).toHaveLength(2);
    expect(res.choices[0]!.finish_reason).toBe('length');
  });

  it("returns the provider's answer unchanged apart from the caller's model name", async () => {
    const res = await gw.client.chat.completions.create({
      model: gw.model,
      messages: messages(),
      logprobs: true,
    });
    const sent = gw.simResponses.filter((r) => r.url.endsWith('/chat/completions')).at(-1)!;
    expect(res).toEqual({ ...JSON.parse(sent.body), model: gw.model });
    expect(res).toHaveProperty('system_fingerprint');
    expect(res.usage).toHaveProperty('completion_tokens_details');
  });

  it("the simulator's answers (tool calls, logprobs, n) conform to OpenAI's document", () => {
    const { checked, failures } = loadConformanceChecker().check(gw.simResponses);
    expect(checked).toBeGreaterThan(5);
    expect(failures).toEqual([]);
  });
});

describe('refusals', () => {
  async function refused(body: Record<string, unknown>) {
    const before = gw.sim.admin.chatRequests().length;
    const metered = (await meteredUsage(gw)).length;
    const err = await gw.client.chat.completions
      .create({ model: gw.model, messages: messages(), ...body } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    // Nothing forwarded, nothing metered.
    expect(gw.sim.admin.chatRequests().length).toBe(before);
    expect((await meteredUsage(gw)).length).toBe(metered);
    return err as InstanceType<typeof OpenAI.BadRequestError>;
  }

  it('answers unknown and invalid parameters with 400 in the OpenAI envelope', async () => {
    const unknown = await refused({ temprature: 0.2 });
    expect(unknown.status).toBe(400);
    expect(unknown.error).toEqual({
      message: 'Unrecognized request argument supplied: temprature',
      type: 'invalid_request_error',
      param: 'temprature',
      code: 'unknown_parameter',
    });
    expect(unknown.param).toBe('temprature');

    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ top_p: 'high' }, 'top_p', 'invalid_type'],
      [{ n: 0 }, 'n', 'invalid_value'],
      [{ temperature: 3 }, 'temperature', 'invalid_value'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', 'invalid_value'],
      [{ top_logprobs: 3 }, 'top_logprobs', 'invalid_value'],
      [{ stream_options: { include_usage: true } }, 'stream_options', 'invalid_value'],
      [{ response_format: { type: 'xml' } }, 'response_format.type', 'invalid_value'],
      [
        { response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true } } },
        'response_format.json_schema.schema',
        'invalid_value',
      ],
      [{ tool_choice: 'required' }, 'tool_choice', 'invalid_value'],
      [
        {
          tools: [{ type: 'function', function: { name: 'a' } }],
          tool_choice: { type: 'function', function: { name: 'b' } },
        },
        'tool_choice.function.name',
        'invalid_value',
      ],
      [
        { tools: [{ type: 'function', function: { name: 'a', extra: 1 } }] },
        'tools[0].function.extra',
        'unknown_parameter',
      ],
      [{ messages: [] }, 'messages', 'invalid_value'],
      [{ messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0].role', 'invalid_value'],
      [
        { messages: [{ role: 'tool', content: 'x' }] },
        'messages[0].tool_call_id',
        'missing_required_parameter',
      ],
      [{ metadata: { k: 1 } }, 'metadata.k', 'invalid_type'],
    ];
    for (const [body, param, code] of cases) {
      const err = await refused(body);
      expect({ param: err.param, code: err.code, type: err.type }, JSON.stringify(body)).toEqual({
        param,
        code,
        type: 'invalid_request_error',
      });
      expect(err.message.length).toBeGreaterThan(10);
    }
    // The model is required like any parameter.
    const missing = await gw.client.chat.completions
      .create({ messages: messages() } as never)
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 400, param: 'model', code: 'missing_required_parameter' });
  });

  it("passes the provider's own 400 through in its envelope", async () => {
    // A custom tool is a valid request the simulator's models do not take.
    const before = gw.sim.admin.chatRequests().length;
    const err = (await gw.client.chat.completions
      .create({
        model: gw.model,
        messages: messages(),
        tools: [{ type: 'custom', custom: { name: 'grep' } }],
      })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(gw.sim.admin.chatRequests().length).toBe(before + 1);
    expect(err.error).toMatchObject({
      type: 'invalid_request_error',
      param: 'tools[0]',
      code: 'invalid_value',
    });
  });
});

describe('tenant rules', () => {
  it('answers 404 for inactive, foreign and unknown models, in the OpenAI envelope', async () => {
    const inactive = await makeFineTune(
      gw.t.db,
      gw.licenseA.id,
      await makeDataset(gw.t.db, gw.licenseA.id, 'uploaded'),
      { model: `${gw.model}-inactive` },
    );
    const foreign = new OpenAI({ baseURL: `${gw.gatewayUrl}/v1`, apiKey: gw.licenseB.key, maxRetries: 0 });
    const before = gw.sim.admin.chatRequests().length;
    for (const [client, model] of [
      [gw.client, `${gw.model}-inactive`],
      [foreign, gw.model],
      [gw.client, 'gpt-4o-mini-2024-07-18'],
      [gw.client, 'ft:unknown'],
    ] as const) {
      const err = await client.chat.completions
        .create({ model, messages: messages() })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err).toMatchObject({ param: 'model', code: 'model_not_found', type: 'invalid_request_error' });
    }
    expect(gw.sim.admin.chatRequests().length).toBe(before);
    expect(await meteredUsage(gw, inactive)).toEqual([]);
    const bad = new OpenAI({ baseURL: `${gw.gatewayUrl}/v1`, apiKey: 'tl_nope', maxRetries: 0 });
    const unauth = await bad.chat.completions
      .create({ model: gw.model, messages: messages() })
      .catch((e: unknown) => e);
    expect(unauth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(unauth).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
  });
});
