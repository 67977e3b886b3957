// The base toy model: a generic extractor that knows nothing of the user's documents, only a little
// English. It answers with the keys the system prompt names (camelCase or snake_case words), and for
// each looks for a line whose label words match the key's words or their English synonyms, then copies
// what follows as written (a date or an amount in the document's notation, else the rest of the line).
// A vendor-like key takes the first line; a currency key the first currency code. Seeded by the
// simulator's seed and the document: about BASE_SNAKE_CASE_RATE of answers use snake_case keys instead
// of the asked ones, and BASE_INVALID_JSON_RATE are cut off before the closing brace.
import {
  type AnalysedText,
  amountAt,
  analyse,
  datesAt,
  fnv1a,
  restValue,
  type Token,
  unitFloat,
} from './ocr-text.ts';

export const BASE_INVALID_JSON_RATE = 0.03;
export const BASE_SNAKE_CASE_RATE = 0.1;

const GENERIC_KEYS = ['invoice_number', 'date', 'total', 'vendor'];
const IDENTIFIER = /^(?:[a-z]+(?:[A-Z][a-z0-9]*)+|[a-z]+(?:_[a-z0-9]+)+)$/;
const IDENTIFIERS = /\b[a-z]+(?:[A-Z][a-z0-9]*)+\b|\b[a-z]+(?:_[a-z0-9]+)+\b/g;
/** A list of words: "a, b and c" (the keys a prompt asks for are usually written as one). */
const WORD_LIST = /[A-Za-z_][A-Za-z0-9_]*(?:\s*(?:,|\band\b|\bor\b)\s*[A-Za-z_][A-Za-z0-9_]*)+/g;
const LIST_SEPARATOR = /\s*(?:,|\band\b|\bor\b)\s*/;
const SYNONYMS: Record<string, string[]> = {
  number: ['number', 'no', 'num'],
  date: ['date', 'dated'],
  due: ['due'],
  total: ['total'],
  amount: ['amount', 'total'],
  net: ['net', 'subtotal'],
  tax: ['tax', 'vat'],
  customer: ['customer', 'bill', 'client'],
  order: ['order', 'po'],
  purchase: ['purchase', 'po'],
};
const CURRENCY_CODE = /\b(EUR|USD|GBP|CHF|JPY|SEK|NOK|DKK|PLN|CZK)\b/;

interface KeySpec {
  key: string;
  snake: string;
  /** Per word of the key: the label words that name it. */
  names: string[][];
  kind: 'currency' | 'vendor' | 'date' | 'amount' | 'text';
}

function keySpec(key: string): KeySpec {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[\s_]+/)
    .filter(Boolean);
  const has = (...w: string[]) => words.some((x) => w.includes(x));
  return {
    key,
    snake: words.join('_'),
    names: words.map((w) => SYNONYMS[w] ?? [w]),
    kind: has('currency')
      ? 'currency'
      : has('vendor', 'supplier', 'seller')
        ? 'vendor'
        : has('date')
          ? 'date'
          : has('total', 'amount', 'net', 'tax')
            ? 'amount'
            : 'text',
  };
}

const keysBySystemPrompt = new Map<string, KeySpec[]>();

/**
 * The keys a system prompt asks for, in its order: a list of words with at least one camelCase or
 * snake_case identifier in it ("invoiceNumber, vendorName and currency"), else the identifiers alone,
 * else a few generic ones. Cached: one prompt serves many calls.
 */
export function requestedKeys(system: string): KeySpec[] {
  let keys = keysBySystemPrompt.get(system);
  if (!keys) {
    const listed = (system.match(WORD_LIST) ?? [])
      .map((list) => list.split(LIST_SEPARATOR))
      .filter((items) => items.some((i) => IDENTIFIER.test(i)))
      .flat();
    const found = [...new Set(listed.length > 0 ? listed : (system.match(IDENTIFIERS) ?? []))];
    keys = (found.length > 0 ? found : GENERIC_KEYS).map(keySpec);
    if (keysBySystemPrompt.size > 1000) keysBySystemPrompt.clear();
    keysBySystemPrompt.set(system, keys);
  }
  return keys;
}

/** The user message without a one-line instruction before the document ("Extract … text.\n\n"). */
function documentPart(user: string): string {
  const blank = user.indexOf('\n\n');
  if (blank < 0) return user;
  const first = user.slice(0, blank).trim();
  return !first.includes('\n') && /[.:]$/.test(first) ? user.slice(blank + 2) : user;
}

/**
 * The token after the label that names the most of the key's words (itself or an English synonym), at
 * least half of them, where a value of the key's kind starts; the first such token on ties.
 */
function labelledToken(doc: AnalysedText, spec: KeySpec): Token | undefined {
  let best: Token | undefined;
  let bestScore = 0;
  for (const line of doc.lines) {
    const w = line.words;
    for (const token of line.tokens) {
      const i = token.index;
      if (i === 0) continue;
      let score = 0;
      for (const names of spec.names) {
        if (
          names.includes(w[i - 1]!) ||
          (i >= 2 && names.includes(w[i - 2]!)) ||
          (i >= 3 && names.includes(w[i - 3]!))
        )
          score++;
      }
      if (score * 2 < spec.names.length || score <= bestScore) continue;
      if (spec.kind === 'date' && datesAt(line.text, token.start).length === 0) continue;
      if (spec.kind === 'amount' && amountAt(line.text, token.start) === null) continue;
      best = token;
      bestScore = score;
    }
  }
  return best;
}

function valueFor(doc: AnalysedText, text: string, spec: KeySpec): string | null {
  if (spec.kind === 'currency') return CURRENCY_CODE.exec(text)?.[1] ?? null;
  if (spec.kind === 'vendor') return doc.lines[0]?.text.trim() ?? null;
  const token = labelledToken(doc, spec);
  return token ? restValue(doc.lines[token.line]!, token) : null;
}

export function baseModelAnswer(system: string, user: string, seed: number): string {
  const text = documentPart(user);
  const doc = analyse(text);
  const hash = fnv1a(user);
  const snakeKeys = unitFloat(hash, seed + 1) < BASE_SNAKE_CASE_RATE;
  const out: Record<string, string | null> = {};
  for (const spec of requestedKeys(system))
    out[snakeKeys ? spec.snake : spec.key] = valueFor(doc, text, spec);
  const json = JSON.stringify(out);
  return unitFloat(hash, seed) < BASE_INVALID_JSON_RATE ? json.slice(0, -1) : json;
}
