import type { Document, ModelConfig } from '@tuneline/contracts';
import type { ChatMessage } from './tokens.ts';

/** Placeholders a user prompt template may use. */
export const TEMPLATE_PLACEHOLDERS = ['text', 'documentId'] as const;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export class TemplateError extends Error {
  override name = 'TemplateError';
}

export type FillTemplate = (doc: Pick<Document, 'id' | 'text'>) => string;

/**
 * Compiles a user prompt template once: `{{text}}` is required, `{{documentId}}` allowed, anything else
 * is an error that names the placeholder.
 */
export function compileTemplate(template: string): FillTemplate {
  const parts: (string | ((doc: Pick<Document, 'id' | 'text'>) => string))[] = [];
  let last = 0;
  let hasText = false;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (name === 'text') {
      hasText = true;
      parts.push(template.slice(last, m.index), (d) => d.text);
    } else if (name === 'documentId') {
      parts.push(template.slice(last, m.index), (d) => d.id);
    } else {
      throw new TemplateError(
        `unknown placeholder {{${name}}} (allowed: ${TEMPLATE_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`,
      );
    }
    last = (m.index ?? 0) + m[0].length;
  }
  parts.push(template.slice(last));
  if (!hasText) throw new TemplateError('must contain the {{text}} placeholder');
  const pieces = parts.filter((p) => p !== '');
  return (doc) => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(doc);
    return out;
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
  let out = '{';
  let first = true;
  for (const key of sortedKeys(Object.keys(obj))) {
    const v = obj[key];
    if (v === undefined || typeof v === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${stableJson(v)}`;
    first = false;
  }
  return `${out}}`;
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
  const order = sortedKeys([...new Set(mappedFields)]);
  const encoded = order.map((name) => JSON.stringify(name));
  return (fields) => {
    let out = '{';
    for (let i = 0; i < order.length; i++) {
      const name = order[i] as string;
      if (!Object.hasOwn(fields, name)) continue;
      const v = fields[name];
      if (v === undefined || typeof v === 'function') continue;
      out += `${out.length > 1 ? ',' : ''}${encoded[i]}:${stableJson(v)}`;
    }
    return `${out}}`;
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
