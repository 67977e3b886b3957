// The chat-completions request the gateway accepts: every parameter OpenAI's chat models take
// (vendor/openai/openapi.yaml, CreateChatCompletionRequest, as the `openai` SDK types it), checked here
// and forwarded unchanged. Anything else is refused in OpenAI's own 400 envelope, never dropped.

import { ProviderError } from '@tuneline/provider';
import { z } from 'zod';
import { HttpError } from '../http.ts';

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();
const stringMap = z.record(z.string(), z.unknown());
const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, _ or -');

const contentPart = z.looseObject({ type: z.string().min(1) });
const toolCall = z.looseObject({
  id: z.string(),
  type: z.string(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }).optional(),
});

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
  tool_calls: z.array(toolCall).optional(),
});

const functionDefinition = z.strictObject({
  name: toolName,
  description: z.string().optional(),
  parameters: stringMap.optional(),
  strict: nullable(z.boolean()),
});

const tool = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('function'), function: functionDefinition }),
  z.strictObject({ type: z.literal('custom'), custom: z.looseObject({ name: z.string() }) }),
]);

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string() }) }),
  z.looseObject({ type: z.enum(['allowed_tools', 'custom']) }),
]);

const responseFormat = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    json_schema: z.strictObject({
      name: toolName,
      description: z.string().optional(),
      schema: stringMap.optional(),
      strict: nullable(z.boolean()),
    }),
  }),
]);

const metadata = z
  .record(z.string().max(64, 'keys must be at most 64 characters'), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, 'must have at most 16 keys');

export const chatRequestSchema = z
  .strictObject({
    model: z.string().min(1, 'must not be empty'),
    messages: z.array(message).min(1, 'must contain at least one message'),
    // Sampling and length.
    max_completion_tokens: nullable(z.int().min(1)),
    max_tokens: nullable(z.int().min(1)),
    temperature: nullable(z.number().min(0).max(2)),
    top_p: nullable(z.number().min(0).max(1)),
    presence_penalty: nullable(z.number().min(-2).max(2)),
    frequency_penalty: nullable(z.number().min(-2).max(2)),
    logit_bias: nullable(z.record(z.string(), z.int().min(-100).max(100))),
    seed: nullable(z.int()),
    n: nullable(z.int().min(1).max(128)),
    stop: z.union([z.string(), z.array(z.string()).min(1).max(4), z.null()]).optional(),
    logprobs: nullable(z.boolean()),
    top_logprobs: nullable(z.int().min(0).max(20)),
    // Output shape.
    response_format: responseFormat.optional(),
    tools: z.array(tool).max(128).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().optional(),
    functions: z
      .array(z.looseObject({ name: toolName }))
      .min(1)
      .max(128)
      .optional(),
    function_call: z.union([z.enum(['none', 'auto']), z.strictObject({ name: z.string() })]).optional(),
    // Streaming.
    stream: nullable(z.boolean()),
    stream_options: nullable(
      z.strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() }),
    ),
    // Bookkeeping at the provider.
    user: z.string().optional(),
    metadata: nullable(metadata),
    store: nullable(z.boolean()),
    safety_identifier: nullable(z.string()),
    prompt_cache_key: nullable(z.string()),
    prompt_cache_retention: nullable(z.enum(['in_memory', '24h'])),
    prompt_cache_options: z.looseObject({}).optional(),
    service_tier: nullable(z.enum(['auto', 'default', 'flex', 'scale', 'priority'])),
    // Other modalities and model options; the provider decides what a given model supports.
    reasoning_effort: nullable(z.string()),
    verbosity: nullable(z.enum(['low', 'medium', 'high'])),
    modalities: nullable(z.array(z.enum(['text', 'audio']))),
    audio: nullable(z.looseObject({ voice: z.unknown(), format: z.string() })),
    prediction: nullable(z.looseObject({ type: z.literal('content') })),
    web_search_options: z.looseObject({}).optional(),
    moderation: nullable(z.looseObject({})),
  })
  .superRefine((body, ctx) => {
    const issue = (path: (string | number)[], message: string, code = 'invalid_value') =>
      ctx.addIssue({ code: 'custom', path, message, params: { openaiCode: code } });
    if (body.top_logprobs != null && body.logprobs !== true)
      issue(['top_logprobs'], "'logprobs' must be set to true when 'top_logprobs' is used.");
    if (body.stream_options != null && body.stream !== true)
      issue(['stream_options'], "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    const format = body.response_format;
    if (format?.type === 'json_schema' && format.json_schema.strict === true && !format.json_schema.schema)
      issue(['response_format', 'json_schema', 'schema'], "'schema' is required when 'strict' is true.");
    const names = new Set(
      (body.tools ?? []).map((t) => (t.type === 'function' ? t.function.name : t.custom.name)),
    );
    const choice = body.tool_choice;
    if (choice !== undefined && choice !== 'none' && names.size === 0)
      issue(['tool_choice'], "'tool_choice' is only allowed when 'tools' are specified.");
    if (choice && typeof choice === 'object' && choice.type === 'function') {
      const name = (choice as { function: { name: string } }).function.name;
      if (names.size > 0 && !names.has(name))
        issue(['tool_choice', 'function', 'name'], `No tool named '${name}' among 'tools'.`);
    }
    if (body.parallel_tool_calls !== undefined && names.size === 0)
      issue(['parallel_tool_calls'], "'parallel_tool_calls' is only allowed when 'tools' are specified.");
    for (const [i, m] of body.messages.entries()) {
      if (m.role === 'tool' && typeof m.tool_call_id !== 'string')
        issue(
          ['messages', i, 'tool_call_id'],
          "Missing required parameter: 'tool_call_id'.",
          'missing_required_parameter',
        );
    }
  })
  .meta({ id: 'ChatCompletionRequest' });

export type ChatRequestBody = z.output<typeof chatRequestSchema>;

/** `messages[0].role`, `response_format.json_schema.name`: how OpenAI names a parameter. */
export function paramName(path: readonly PropertyKey[]): string | null {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || null;
}

/** The first thing wrong with a request, said the way OpenAI says it, with `param` and `code`. */
export function invalidChatRequest(error: z.ZodError): HttpError {
  const first = error.issues[0];
  if (!first) return new HttpError(400, 'Invalid request body.', undefined, { param: null, code: null });
  const param = paramName(first.path);
  const at = param ?? 'body';
  let message: string;
  let code: string;
  let named = param;
  switch (first.code) {
    case 'unrecognized_keys': {
      const key = first.keys[0] ?? '';
      named = paramName([...first.path, key]);
      message = `Unrecognized request argument supplied: ${named}`;
      code = 'unknown_parameter';
      break;
    }
    case 'invalid_type':
      if (first.message.includes('received undefined')) {
        message = `Missing required parameter: '${at}'.`;
        code = 'missing_required_parameter';
      } else {
        message = `Invalid type for '${at}': expected ${first.expected}.`;
        code = 'invalid_type';
      }
      break;
    case 'custom': {
      message = first.message;
      code = (first.params as { openaiCode?: string } | undefined)?.openaiCode ?? 'invalid_value';
      break;
    }
    default:
      message = `Invalid value for '${at}': ${first.message}.`;
      code = 'invalid_value';
  }
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return new HttpError(400, `${message}${more}`, [{ field: named ?? 'body', message: first.message }], {
    type: 'invalid_request_error',
    param: named,
    code,
  });
}

/**
 * A provider failure as the gateway answers it: the caller's own mistakes (the provider's 400/422)
 * pass through in the provider's own envelope, its rate limit as 429, anything else as 502.
 */
export function providerFailure(err: unknown): HttpError {
  if (!(err instanceof ProviderError)) {
    return new HttpError(502, `provider unreachable: ${(err as Error).message}`, undefined, {
      type: 'server_error',
    });
  }
  const detail = err.providerError;
  if (err.status !== undefined && err.kind === 'rejected' && (err.status === 400 || err.status === 422)) {
    return new HttpError(400, detail?.message ?? `provider: ${err.message}`, undefined, {
      type: detail?.type ?? 'invalid_request_error',
      param: detail?.param ?? null,
      code: detail?.code ?? null,
    });
  }
  if (err.kind === 'rate_limited') {
    return new HttpError(429, `provider is rate limiting: ${detail?.message ?? err.message}`, undefined, {
      type: detail?.type ?? 'requests',
      code: detail?.code ?? 'rate_limit_exceeded',
    });
  }
  // No answer at all: the ProviderError already says "provider unreachable: …".
  const message = err.status === undefined ? err.message : `provider answered ${err.status}: ${err.message}`;
  return new HttpError(502, message, undefined, { type: 'server_error' });
}
