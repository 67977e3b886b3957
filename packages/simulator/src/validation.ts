// The provider's check of a chat fine-tuning file, written apart from the dataset builder's on purpose.
import type { BaseModel } from './models.ts';
import { countChatTokens } from './tokens.ts';

export const MIN_EXAMPLES = 10;

const EXAMPLE_KEYS = new Set(['messages', 'tools', 'functions', 'parallel_tool_calls']);
const MESSAGE_KEYS = new Set([
  'role',
  'content',
  'name',
  'weight',
  'tool_calls',
  'tool_call_id',
  'function_call',
]);
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const SPECIAL_TOKEN = /<\|[A-Za-z0-9_]+\|>/;

export interface TrainingExample {
  /** The last user message before the final assistant message: what the toy model keys on. */
  input: string;
  /** The final assistant message: what the fine-tuned toy model answers. */
  answer: string;
  tokens: number;
}

export type ValidationResult =
  | { ok: true; examples: TrainingExample[]; tokens: number }
  | { ok: false; code: string; message: string };

interface Message {
  role: string;
  content?: unknown;
  name?: unknown;
  weight?: unknown;
  tool_calls?: unknown;
  function_call?: unknown;
}

/** Checks one example; returns a problem description or the parsed example. */
function checkExample(value: unknown, model: BaseModel): string | TrainingExample {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
  for (const key of Object.keys(value)) {
    if (!EXAMPLE_KEYS.has(key)) return `has an unrecognized key "${key}"`;
  }
  const messages = (value as { messages?: unknown }).messages;
  if (!Array.isArray(messages) || messages.length === 0) return 'is missing the "messages" list';
  for (const [i, raw] of messages.entries()) {
    const where = `message ${i + 1}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `${where} is not an object`;
    for (const key of Object.keys(raw)) {
      if (!MESSAGE_KEYS.has(key)) return `${where} has an unrecognized key "${key}"`;
    }
    const m = raw as Message;
    if (typeof m.role !== 'string' || !ROLES.has(m.role))
      return `${where} has an unrecognized role "${String(m.role)}"`;
    const hasCall = m.role === 'assistant' && (m.tool_calls !== undefined || m.function_call !== undefined);
    if (typeof m.content !== 'string' && !(hasCall && m.content == null))
      return `${where} content is not a string`;
    if (typeof m.content === 'string' && SPECIAL_TOKEN.test(m.content)) {
      return `${where} contains the special token "${SPECIAL_TOKEN.exec(m.content)?.[0]}"`;
    }
    if (m.weight !== undefined) {
      if (m.role !== 'assistant') return `${where} has a weight but only assistant messages may`;
      if (m.weight !== 0 && m.weight !== 1) return `${where} weight must be 0 or 1`;
    }
  }
  const typed = messages as Message[];
  const lastAssistant = typed.map((m) => m.role).lastIndexOf('assistant');
  if (lastAssistant < 0) return 'has no assistant message';
  const tokens = countChatTokens(typed, model.encoding);
  if (tokens > model.exampleTokenLimit) {
    return `has ${tokens} tokens, more than the ${model.exampleTokenLimit}-token limit of ${model.id}`;
  }
  const userBefore = typed.slice(0, lastAssistant).filter((m) => m.role === 'user');
  const input = userBefore.at(-1)?.content;
  const answer = typed[lastAssistant]?.content;
  return {
    input: typeof input === 'string' ? input : '',
    answer: typeof answer === 'string' ? answer : '',
    tokens,
  };
}

/** Validates a whole JSONL file. Examples are numbered from 1, as lines are. */
export function validateTrainingFile(
  content: string,
  model: BaseModel,
  minExamples = MIN_EXAMPLES,
): ValidationResult {
  const lines = content.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const examples: TrainingExample[] = [];
  for (const [i, line] of lines.entries()) {
    const n = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return {
        ok: false,
        code: 'invalid_training_file',
        message: `Invalid file format. Example ${n} (line ${n}) is not valid JSON.`,
      };
    }
    const checked = checkExample(value, model);
    if (typeof checked === 'string') {
      return {
        ok: false,
        code: 'invalid_training_file',
        message: `Invalid file format. Example ${n} (line ${n}) ${checked}.`,
      };
    }
    examples.push(checked);
  }
  if (examples.length < minExamples) {
    return {
      ok: false,
      code: 'invalid_n_examples',
      message: `Training file has ${examples.length} example(s), but must have at least ${minExamples} examples.`,
    };
  }
  return { ok: true, examples, tokens: examples.reduce((sum, e) => sum + e.tokens, 0) };
}
