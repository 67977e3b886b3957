import type { Document, ModelConfig } from '@tuneline/contracts';
import type { ChatMessage, TokenCounter } from './tokens.ts';

/** Placeholders a user prompt template may use. */
export const TEMPLATE_PLACEHOLDERS = ['text', 'documentId'] as const;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export class TemplateError extends Error {
  override name = 'TemplateError';
}

export type FillTemplate = (doc: Pick<Document, 'id' | 'text'>) => string;

/** A compiled user prompt template. */
export interface PromptTemplate {
  fill: FillTemplate;
  /** `fill(doc).length`, without building the prompt. */
  length(doc: Pick<Document, 'id' | 'text'>): number;
  /**
   * When the template ends with its only `{{text}}`: the prompt before the text, so that
   * `fill(doc) === prefix(doc) + doc.text` (lets the builder encode and count the text on its own).
   */
  prefix: FillTemplate | undefined;
  /** The template's literal text right before `{{text}}` (back to the previous placeholder, if any). */
  beforeText: string;
}

const TEXT_PART = { placeholder: 'text' } as const;
const ID_PART = { placeholder: 'documentId' } as const;
/** A literal or a placeholder. */
type TemplatePart = string | typeof TEXT_PART | typeof ID_PART;

function fillParts(parts: readonly TemplatePart[]): FillTemplate {
  return (doc) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p === TEXT_PART ? doc.text : doc.id;
    return out;
  };
}

/**
 * Compiles a user prompt template once: `{{text}}` is required, `{{documentId}}` allowed, anything else
 * is an error that names the placeholder.
 */
export function compileTemplate(template: string): FillTemplate {
  return compilePromptTemplate(template).fill;
}

/** compileTemplate, with the structure the builder uses (see PromptTemplate). */
export function compilePromptTemplate(template: string): PromptTemplate {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (name !== 'text' && name !== 'documentId') {
      throw new TemplateError(
        `unknown placeholder {{${name}}} (allowed: ${TEMPLATE_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`,
      );
    }
    parts.push(template.slice(last, m.index), name === 'text' ? TEXT_PART : ID_PART);
    last = (m.index ?? 0) + m[0].length;
  }
  parts.push(template.slice(last));
  const textAt = parts.indexOf(TEXT_PART);
  if (textAt < 0) throw new TemplateError('must contain the {{text}} placeholder');
  const pieces = parts.filter((p) => p !== '');
  const textLast = pieces.at(-1) === TEXT_PART && pieces.indexOf(TEXT_PART) === pieces.length - 1;
  return {
    fill: fillParts(pieces),
    length: (doc) => {
      let n = 0;
      for (const p of pieces) n += (typeof p === 'string' ? p : p === TEXT_PART ? doc.text : doc.id).length;
      return n;
    },
    prefix: textLast ? fillParts(pieces.slice(0, -1)) : undefined,
    beforeText: parts[textAt - 1] as string,
  };
}

const INDEX_KEY = /^(?:0|[1-9][0-9]*)$/;

/**
 * Compact JSON with object keys sorted at every level: the same text as contracts' `canonicalJson`
 * (tested), without a replacer function, which makes JSON.stringify several times slower.
 */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      out += (i ? ',' : '') + (v === undefined || typeof v === 'function' ? 'null' : stableJson(v));
    }
    return `${out}]`;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return stableJson((value as { toJSON(): unknown }).toJSON());
  const obj = value as Record<string, unknown>;
  const { keys, encoded } = keyOrder(Object.keys(obj));
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const v = obj[keys[i] as string];
    if (v === undefined || typeof v === 'function') continue;
    out += `${first ? '' : ','}${encoded[i]}:${stableJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** An object's keys in canonical order, and each as JSON. */
interface KeyOrder {
  keys: readonly string[];
  encoded: readonly string[];
}

let lastKeys: readonly string[] = [];
let lastOrder: KeyOrder = { keys: [], encoded: [] };

/**
 * The key order of an object with these keys (as Object.keys lists them). The documents of a request
 * mostly share their field names, so the last order is kept rather than sorted and encoded again.
 */
function keyOrder(keys: string[]): KeyOrder {
  if (keys.length === lastKeys.length) {
    let same = true;
    for (let i = 0; i < keys.length && same; i++) same = keys[i] === lastKeys[i];
    if (same) return lastOrder;
  }
  const sorted = sortedKeys([...keys]);
  lastKeys = keys;
  lastOrder = { keys: sorted, encoded: sorted.map((k) => JSON.stringify(k)) };
  return lastOrder;
}

/**
 * Keys in canonicalJson's order: sorted, except that integer-like keys come first (ascending), as JS
 * objects list them whatever the insertion order and canonicalJson's rebuilt object does too.
 */
function sortedKeys(keys: string[]): string[] {
  keys.sort();
  for (const k of keys) {
    const c = k.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39 && INDEX_KEY.test(k)) {
      // No prototype, or a "__proto__" key would set it instead of being listed.
      const ordered: Record<string, true> = Object.create(null);
      for (const key of keys) ordered[key] = true;
      return Object.keys(ordered);
    }
  }
  return keys;
}

/** A field value that carries no answer: missing, null, blank text, or an empty list/object. */
export function isEmptyValue(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/**
 * The assistant's answer: the fields as compact JSON with keys sorted at every level, either all of them
 * (`dump: all`) or only the mapped ones the document has (`dump: mapped`).
 */
export function assistantContent(
  fields: Document['fields'],
  dump: 'all' | 'mapped',
  mappedFields: readonly string[],
): string {
  if (dump === 'all') return stableJson(fields);
  // No prototype: a mapped field named "__proto__" is a key like any other, not the object's prototype.
  const picked: Record<string, unknown> = Object.create(null);
  for (const name of mappedFields) {
    if (Object.hasOwn(fields, name) && fields[name] !== undefined) picked[name] = fields[name];
  }
  return stableJson(picked);
}

/**
 * `assistantContent` with the dump mode and mapped fields fixed: for `dump: mapped` the key order and
 * the encoded keys are worked out once, not per document. The same text (tested).
 */
export function compileAssistantContent(
  dump: 'all' | 'mapped',
  mappedFields: readonly string[],
): (fields: Document['fields']) => string {
  if (dump === 'all') return (fields) => stableJson(fields);
  const order = answerFieldOrder(mappedFields);
  const encoded = order.map((name) => JSON.stringify(name));
  return (fields) => {
    let out = '{';
    for (let i = 0; i < order.length; i++) {
      const v = answerValue(fields, order[i] as string);
      if (v === undefined) continue;
      out += `${out.length > 1 ? ',' : ''}${encoded[i]}:${stableJson(v)}`;
    }
    return `${out}}`;
  };
}

/**
 * The mapped fields in the order a `dump: mapped` answer lists them: each once, in canonicalJson's key
 * order. compileAssistantContent, compileAnswerKey and compileAnswerTokens must agree on it.
 */
function answerFieldOrder(mappedFields: readonly string[]): string[] {
  return sortedKeys([...new Set(mappedFields)]);
}

/** What a mapped field puts in the answer: its value, or undefined when the answer leaves it out. */
function answerValue(fields: Document['fields'], name: string): unknown {
  if (!Object.hasOwn(fields, name)) return undefined;
  const v = fields[name];
  return typeof v === 'function' ? undefined : v;
}

/** 32-bit FNV-1a over UTF-16 code units, continuing from `h`. */
export function fnv1a(text: string, h = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * A cheap 32-bit key of the answer `compileAssistantContent` makes: equal answers always get equal
 * keys (unequal ones rarely do). For `dump: mapped` it hashes the present mapped fields' positions and
 * values without building the answer; the answer's JSON decomposes uniquely into those.
 */
export function compileAnswerKey(
  dump: 'all' | 'mapped',
  mappedFields: readonly string[],
): (fields: Document['fields']) => number {
  if (dump === 'all') return (fields) => fnv1a(stableJson(fields));
  const order = answerFieldOrder(mappedFields);
  return (fields) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < order.length; i++) {
      const v = answerValue(fields, order[i] as string);
      if (v === undefined) continue;
      // The field's position, then its value: a string as is, anything else as its JSON (a string and
      // a number with the same text may share a key; equal answers never differ in it).
      h = Math.imul(h ^ (i + 1), 0x01000193);
      h = fnv1a(typeof v === 'string' ? v : stableJson(v), h);
    }
    return h >>> 0;
  };
}

/** A string JSON writes as is between its quotes: no quote, backslash, control character or surrogate. */
const JSON_VERBATIM = /^[^\u0000-\u001F"\\\uD800-\uDFFF]*$/;
const STARTS_LETTER_OR_DIGIT = /^[\p{L}\p{N}]/u;
const ENDS_LETTER_OR_DIGIT = /[\p{L}\p{N}]$/u;

/**
 * Whether a string value's tokens inside the answer are its own tokens: its JSON is `"value"` and it
 * starts and ends with a letter or digit. Then, for both encodings' pre-tokenizer, the piece holding the
 * opening quote is the punctuation run `":"` (or `{"…":"`), which stops at the value's first character,
 * and the piece holding the value's last character (letters, or up to 3 digits) stops at the closing
 * quote (not a letter, digit, mark or `'`). The patterns look behind nothing, so the value's pieces and
 * the structure's pieces are each what they would be alone.
 */
function tokensApart(value: string): boolean {
  return (
    value.length > 0 &&
    JSON_VERBATIM.test(value) &&
    STARTS_LETTER_OR_DIGIT.test(value) &&
    ENDS_LETTER_OR_DIGIT.test(value.slice(-2))
  );
}

/** Distinct field values whose token counts compileAnswerTokens keeps. */
const MAX_CACHED_VALUES = 16_384;

/**
 * The token count of `compileAssistantContent`'s answer, counting only the field values per document:
 * for `dump: mapped` with string values that `tokensApart` accepts, the answer's fixed JSON (braces,
 * keys, quotes) is counted once per set of present fields. Any other answer is counted whole. The same
 * count as `counter.count(answer)` (property-tested for both encodings).
 */
export function compileAnswerTokens(
  dump: 'all' | 'mapped',
  mappedFields: readonly string[],
  counter: TokenCounter,
): (fields: Document['fields'], answer: string) => number {
  const order = answerFieldOrder(mappedFields);
  // The set of present fields is a bit mask.
  if (dump === 'all' || order.length > 30) return (_fields, answer) => counter.count(answer);
  const encoded = order.map((name) => JSON.stringify(name));
  const structure = new Map<number, number>();
  const structureTokens = (mask: number): number => {
    let tokens = 0;
    let first = true;
    for (let i = 0; i < order.length; i++) {
      if (!(mask & (1 << i))) continue;
      tokens += counter.count(`${first ? '{' : '",'}${encoded[i]}:"`);
      first = false;
    }
    tokens += counter.count(first ? '{}' : '"}');
    structure.set(mask, tokens);
    return tokens;
  };
  // Field values repeat across documents (vendors, currencies, dates): each distinct value is checked
  // and counted once. -1 marks a value whose tokens are not its own. Bounded like the piece cache.
  const valueTokens = new Map<string, number>();
  const learnValue = (value: string): number => {
    const tokens = tokensApart(value) ? counter.count(value) : -1;
    if (valueTokens.size >= MAX_CACHED_VALUES) valueTokens.clear();
    valueTokens.set(value, tokens);
    return tokens;
  };
  return (fields, answer) => {
    let mask = 0;
    let tokens = 0;
    for (let i = 0; i < order.length; i++) {
      const v = answerValue(fields, order[i] as string);
      if (v === undefined) continue;
      const own = typeof v === 'string' ? (valueTokens.get(v) ?? learnValue(v)) : -1;
      if (own < 0) return counter.count(answer);
      mask |= 1 << i;
      tokens += own;
    }
    return tokens + (structure.get(mask) ?? structureTokens(mask));
  };
}

/** One chat example: system prompt, filled user prompt, fields as the assistant's reply. */
export function buildMessages(
  doc: Document,
  config: Pick<ModelConfig, 'systemPrompt' | 'mappedFields'>,
  fill: FillTemplate,
  dump: 'all' | 'mapped',
): ChatMessage[] {
  return [
    { role: 'system', content: config.systemPrompt },
    { role: 'user', content: fill(doc) },
    { role: 'assistant', content: assistantContent(doc.fields, dump, config.mappedFields) },
  ];
}

/**
 * Characters that keep a string off the fast JSON encoding: those JSON escapes other than tab, line feed
 * and carriage return (control characters, quote, backslash), DEL, and surrogates (a lone one is
 * escaped). Exactly CONTROL_CHAR_PATTERN's characters plus quote, backslash and surrogates.
 */
const PLAIN = /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F"\\\u007F\uD800-\uDFFF]*$/;

/**
 * Whether `text` is "plain": it has no control character (in CONTROL_CHAR_PATTERN's sense), quote,
 * backslash or surrogate, so `quotePlainText` encodes it. Typical OCR text is plain.
 */
export function isPlainText(text: string): boolean {
  // Anchored and negated: a tighter loop than searching for the first offending character.
  return PLAIN.test(text);
}

/**
 * `JSON.stringify(text)` without the enclosing quotes, for a plain text (see isPlainText): only tab,
 * line feed and carriage return need escaping, which native replaceAll does several times faster than
 * JSON.stringify's per-character loop. Tested against JSON.stringify.
 */
export function escapePlainText(text: string): string {
  let body = text;
  if (body.includes('\n')) body = body.replaceAll('\n', '\\n');
  if (body.includes('\r')) body = body.replaceAll('\r', '\\r');
  if (body.includes('\t')) body = body.replaceAll('\t', '\\t');
  return body;
}

/** `JSON.stringify(text)` for a plain text (see isPlainText). */
export function quotePlainText(text: string): string {
  return `"${escapePlainText(text)}"`;
}

/** One line of the JSONL file (with the trailing newline). */
export function exampleLine(messages: readonly ChatMessage[]): string {
  return `${JSON.stringify({ messages })}\n`;
}

/** The constant text of an example line around its JSON-encoded user and assistant contents. */
export interface ExampleLineParts {
  head: string;
  middle: string;
  tail: string;
}

/**
 * `exampleLine` for a fixed system prompt, split around the two contents that change per example:
 * `head + JSON.stringify(user) + middle + JSON.stringify(answer) + tail` is the same text (tested), so
 * the builder encodes the system prompt once and writes the parts without building the line.
 */
export function exampleLineParts(systemPrompt: string): ExampleLineParts {
  return {
    head: `{"messages":[{"role":"system","content":${JSON.stringify(systemPrompt)}},{"role":"user","content":`,
    middle: '},{"role":"assistant","content":',
    tail: '}]}\n',
  };
}
