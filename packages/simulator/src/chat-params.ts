// The chat-completions parameters the simulator knows, checked like OpenAI checks them: an unknown one
// is refused (never ignored), and the ones it honours (n, stop, seed, logprobs, response_format, tools)
// must be well-formed. Independent of the gateway's own checks on purpose: each tests the other.
import { badRequest } from './errors.ts';

const KNOWN = new Set([
  'model',
  'messages',
  'audio',
  'frequency_penalty',
  'function_call',
  'functions',
  'logit_bias',
  'logprobs',
  'max_completion_tokens',
  'max_tokens',
  'metadata',
  'modalities',
  'moderation',
  'n',
  'parallel_tool_calls',
  'prediction',
  'presence_penalty',
  'prompt_cache_key',
  'prompt_cache_options',
  'prompt_cache_retention',
  'reasoning_effort',
  'response_format',
  'safety_identifier',
  'seed',
  'service_tier',
  'stop',
  'store',
  'stream',
  'stream_options',
  'temperature',
  'tool_choice',
  'tools',
  'top_logprobs',
  'top_p',
  'user',
  'verbosity',
  'web_search_options',
]);

export interface FunctionTool {
  name: string;
  parameters: unknown;
}

export interface ChatParams {
  n: number;
  stop: string[];
  seed: number | null;
  logprobs: boolean;
  topLogprobs: number;
  format: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: unknown };
  tools: FunctionTool[];
  /** The tool to call, when the answer is a tool call. */
  toolToCall: FunctionTool | null;
  /** `tool_choice` named the function: OpenAI then finishes with 'stop', not 'tool_calls'. */
  toolForced: boolean;
  stream: boolean;
  includeUsage: boolean;
}

const invalid = (param: string, message: string, code = 'invalid_value') =>
  badRequest(`Invalid value for '${param}': ${message}`, param, code);

function optionalNumber(body: Record<string, unknown>, key: string, min: number, max: number, int = false) {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)))
    throw badRequest(
      `Invalid type for '${key}': expected ${int ? 'an integer' : 'a number'}.`,
      key,
      'invalid_type',
    );
  if (v < min || v > max) throw invalid(key, `expected a value between ${min} and ${max}, got ${v}.`);
  return v;
}

export function readChatParams(body: Record<string, unknown>): ChatParams {
  for (const key of Object.keys(body)) {
    if (!KNOWN.has(key))
      throw badRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
  }
  optionalNumber(body, 'temperature', 0, 2);
  optionalNumber(body, 'top_p', 0, 1);
  optionalNumber(body, 'presence_penalty', -2, 2);
  optionalNumber(body, 'frequency_penalty', -2, 2);
  const n = optionalNumber(body, 'n', 1, 128, true) ?? 1;
  const seed = optionalNumber(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true) ?? null;
  const topLogprobs = optionalNumber(body, 'top_logprobs', 0, 20, true);
  const logprobs = body.logprobs === true;
  if (topLogprobs !== undefined && !logprobs)
    throw invalid('top_logprobs', "'logprobs' must be set to true when 'top_logprobs' is used.");

  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) {
    if (body.stop.length > 4 || body.stop.some((s) => typeof s !== 'string'))
      throw invalid('stop', 'expected a string or an array of at most 4 strings.');
    stop = body.stop as string[];
  } else if (body.stop !== undefined && body.stop !== null)
    throw badRequest("Invalid type for 'stop': expected a string or an array.", 'stop', 'invalid_type');

  let format: ChatParams['format'] = { type: 'text' };
  const rf = body.response_format as Record<string, unknown> | undefined;
  if (rf !== undefined) {
    if (!rf || typeof rf !== 'object') throw invalid('response_format', 'expected an object.');
    if (rf.type === 'json_object') format = { type: 'json_object' };
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Record<string, unknown> | undefined;
      if (!js || typeof js.name !== 'string')
        throw badRequest(
          "Missing required parameter: 'response_format.json_schema.name'.",
          'response_format.json_schema.name',
          'missing_required_parameter',
        );
      format = { type: 'json_schema', schema: js.schema ?? {} };
    } else if (rf.type !== 'text')
      throw invalid('response_format.type', "expected 'text', 'json_object' or 'json_schema'.");
  }

  const tools: FunctionTool[] = [];
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw invalid('tools', 'expected an array.');
    for (const [i, t] of body.tools.entries()) {
      const fn = (t as { function?: { name?: unknown; parameters?: unknown } })?.function;
      if ((t as { type?: unknown })?.type !== 'function' || typeof fn?.name !== 'string')
        throw invalid(`tools[${i}]`, "expected {type: 'function', function: {name, parameters}}.");
      tools.push({ name: fn.name, parameters: fn.parameters ?? { type: 'object', properties: {} } });
    }
  }
  const choice = body.tool_choice;
  if (choice !== undefined && tools.length === 0)
    throw invalid('tool_choice', "'tool_choice' is only allowed when 'tools' are specified.");
  let toolToCall: FunctionTool | null = null;
  let toolForced = false;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const answeredTool = (messages.at(-1) as { role?: unknown } | undefined)?.role === 'tool';
  if (choice && typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    toolToCall = tools.find((t) => t.name === name) ?? null;
    if (!toolToCall) throw invalid('tool_choice', `no tool named '${String(name)}'.`);
    toolForced = true;
  } else if (tools.length > 0 && choice !== 'none' && (!answeredTool || choice === 'required')) {
    toolToCall = tools[0] ?? null;
  }

  const stream = body.stream === true;
  const options = body.stream_options as { include_usage?: unknown } | null | undefined;
  if (options != null && !stream)
    throw invalid('stream_options', "'stream_options' is only allowed when 'stream' is enabled.");
  return {
    n,
    stop,
    seed,
    logprobs,
    topLogprobs: topLogprobs ?? 0,
    format,
    tools,
    toolToCall,
    toolForced,
    stream,
    includeUsage: options?.include_usage === true,
  };
}
