import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  type Catalogue,
  defaultCatalogue,
  findBaseModel,
  resolveEpochsFor,
  trainingCredits,
} from './catalogue.ts';
import { exampleWarnings, RepeatCheck } from './example-warnings.ts';
import type { DatasetIssue } from './issues.ts';
import { IntList, type TokenStats, tokenStats } from './stats.ts';
import { findSpecialToken, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE, tokenCounter } from './tokens.ts';

/**
 * Pre-flight check of a chat fine-tuning JSONL file: the format checks of OpenAI's data-preparation
 * cookbook (same error kinds), plus special tokens and over-long examples, token distribution and the
 * billing estimate. Streams the file: memory holds counts, not examples.
 */

export const FORMAT_ERROR_KINDS = [
  'invalid_json',
  'data_type',
  'missing_messages_list',
  'message_missing_key',
  'message_unrecognized_key',
  'unrecognized_role',
  'missing_content',
  'example_missing_assistant_message',
  'special_tokens',
  'too_many_tokens',
] as const;
export type FormatErrorKind = (typeof FORMAT_ERROR_KINDS)[number];

const ALLOWED_KEYS = new Set(['role', 'content', 'name', 'function_call', 'weight', 'tool_calls', 'refusal']);
const ROLES = new Set(['system', 'user', 'assistant', 'function', 'tool']);
/** Line numbers listed per error kind at most. */
const MAX_LINES_LISTED = 50;

export interface FileErrorCount {
  kind: FormatErrorKind | 'too_few_examples';
  count: number;
  /** 1-based line numbers (first 50). */
  lines: number[];
}

export interface FileValidation {
  model: string;
  usable: boolean;
  examples: number;
  errors: FileErrorCount[];
  /** The builder's shape (DatasetIssue); examples are named by `lines`. */
  warnings: DatasetIssue[];
  tokens: TokenStats & { total: number };
  epochs: number;
  estimatedBilledTokens: string;
  estimatedCredits: string;
}

export const MIN_FILE_EXAMPLES = 10;

export async function validateChatFile(
  input: Readable,
  opts: { model: string; catalogue?: Catalogue; onProgress?(lines: number): void },
): Promise<FileValidation> {
  const model = findBaseModel(opts.model, opts.catalogue ?? defaultCatalogue);
  if (!model) throw new Error(`unknown base model "${opts.model}"`);
  const counter = tokenCounter(model.encoding);
  const errors = new Map<FileErrorCount['kind'], FileErrorCount>();
  let formatErrorsInLine = 0;
  const addError = (kind: FileErrorCount['kind'], line: number) => {
    if (kind !== 'too_many_tokens' && kind !== 'special_tokens') formatErrorsInLine++;
    let e = errors.get(kind);
    if (!e) {
      e = { kind, count: 0, lines: [] };
      errors.set(kind, e);
    }
    e.count++;
    if (e.lines.length < MAX_LINES_LISTED && line > 0) e.lines.push(line);
  };
  const tokens = new IntList();
  const tokenLines = new IntList();
  let billable = 0n;
  let examples = 0;
  let lineNo = 0;
  const missingSystem: number[] = [];
  let missingSystemCount = 0;
  let missingUserCount = 0;
  const missingUser: number[] = [];
  const repeats = new RepeatCheck();

  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const raw of lines) {
    lineNo++;
    if (lineNo % 1000 === 0) opts.onProgress?.(lineNo);
    if (raw.trim() === '') continue;
    examples++;
    formatErrorsInLine = 0;
    let ex: unknown;
    try {
      ex = JSON.parse(raw);
    } catch {
      addError('invalid_json', lineNo);
      continue;
    }
    if (!ex || typeof ex !== 'object' || Array.isArray(ex)) {
      addError('data_type', lineNo);
      continue;
    }
    const messages = (ex as { messages?: unknown }).messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      addError('missing_messages_list', lineNo);
      continue;
    }
    let hasAssistant = false;
    let hasSystem = false;
    let hasUser = false;
    let count = REPLY_PRIMING_TOKENS;
    let special = false;
    for (const m of messages) {
      if (!m || typeof m !== 'object' || Array.isArray(m)) {
        addError('data_type', lineNo);
        continue;
      }
      const msg = m as Record<string, unknown>;
      if (!('role' in msg) || !('content' in msg)) addError('message_missing_key', lineNo);
      if (Object.keys(msg).some((k) => !ALLOWED_KEYS.has(k))) addError('message_unrecognized_key', lineNo);
      const role = msg.role;
      if (typeof role !== 'string' || !ROLES.has(role)) addError('unrecognized_role', lineNo);
      const content = msg.content;
      if ((typeof content !== 'string' || content === '') && !msg.function_call && !msg.tool_calls) {
        addError('missing_content', lineNo);
      }
      if (role === 'assistant') hasAssistant = true;
      if (role === 'system') hasSystem = true;
      if (role === 'user') hasUser = true;
      count += TOKENS_PER_MESSAGE;
      for (const [key, value] of Object.entries(msg)) {
        if (typeof value !== 'string' || key === 'weight') continue;
        if (findSpecialToken(value)) special = true;
        count += counter.count(value);
        if (key === 'name') count += 1;
      }
    }
    if (!hasAssistant) addError('example_missing_assistant_message', lineNo);
    if (special) addError('special_tokens', lineNo);
    if (count > model.maxTokensPerExample) addError('too_many_tokens', lineNo);
    if (!hasSystem) {
      missingSystemCount++;
      if (missingSystem.length < MAX_LINES_LISTED) missingSystem.push(lineNo);
    }
    if (!hasUser) {
      missingUserCount++;
      if (missingUser.length < MAX_LINES_LISTED) missingUser.push(lineNo);
    }
    // Malformed examples stay out of the token figures; over-long ones count (capped) as the provider bills.
    if (formatErrorsInLine > 0) continue;
    tokens.push(count);
    tokenLines.push(lineNo);
    billable += BigInt(Math.min(count, model.maxTokensPerExample));
    repeats.check(raw, lineNo);
  }
  if (examples < MIN_FILE_EXAMPLES) addError('too_few_examples', 0);

  const warnings: DatasetIssue[] = [];
  if (examples < 50) {
    warnings.push({
      code: 'few_examples',
      count: examples,
      message: `${examples} examples; 50–100 are recommended`,
    });
  }
  for (const [role, count, lines] of [
    ['system', missingSystemCount, missingSystem],
    ['user', missingUserCount, missingUser],
  ] as const) {
    if (count)
      warnings.push({
        code: `missing_${role}_message`,
        count,
        lines,
        message: `${count} examples have no ${role} message`,
      });
  }
  // The same warnings, from the same code, as the builder's (lines instead of document ids).
  const list = tokens.view();
  warnings.push(...exampleWarnings(repeats, list, tokenLines.view(), (lines) => ({ lines })));
  let total = 0;
  for (const t of list) total += t;
  const epochs = resolveEpochsFor(model, examples, 'auto');
  const billed = BigInt(epochs) * billable;
  const order = (kind: string) => {
    const i = FORMAT_ERROR_KINDS.indexOf(kind as FormatErrorKind);
    return i < 0 ? FORMAT_ERROR_KINDS.length : i;
  };
  const errorList = [...errors.values()].sort((a, b) => order(a.kind) - order(b.kind));
  return {
    model: model.name,
    usable: errorList.length === 0,
    examples,
    errors: errorList,
    warnings,
    tokens: { ...tokenStats(list), total },
    epochs,
    estimatedBilledTokens: billed.toString(),
    estimatedCredits: trainingCredits(billed, model.creditsPerMillionTrainingTokens).toString(),
  };
}
