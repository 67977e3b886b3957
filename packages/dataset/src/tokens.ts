import { Tiktoken } from 'js-tiktoken/lite';
import cl100k_base from 'js-tiktoken/ranks/cl100k_base';
import o200k_base from 'js-tiktoken/ranks/o200k_base';
import { cachedIn } from './cache.ts';
import type { Encoding } from './catalogue.ts';
import { isPlainText } from './examples.ts';

/** A chat message as the fine-tuning file holds it. */
export interface ChatMessage {
  role: string;
  content: string;
}

const encoders = new Map<Encoding, Tiktoken>();

/** js-tiktoken's own tokenizer for an encoding (large; used to cross-check, not on the build path). */
export function encoderFor(encoding: Encoding): Tiktoken {
  return cachedIn(encoders, encoding, () => new Tiktoken(rankData[encoding]));
}

/** js-tiktoken's rank data: `pat_str` (the pre-tokenizer regex) and `bpe_ranks` (compressed ranks). */
type RankData = typeof o200k_base;
const rankData: Record<Encoding, RankData> = { o200k_base, cl100k_base };

/**
 * Byte sequence → rank, keyed by the bytes as a latin1 string. Decoded from js-tiktoken's rank files
 * (lines `! <offset> <base64 token>...`, as its Tiktoken constructor reads them) without the decode
 * tables and comma-joined keys it builds, which take several times the memory.
 */
function loadRanks(data: RankData): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const line of data.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, offsetStr, ...tokens] = line.split(' ');
    const offset = Number.parseInt(offsetStr ?? '', 10);
    for (let i = 0; i < tokens.length; i++) {
      ranks.set(Buffer.from(tokens[i] as string, 'base64').toString('latin1'), offset + i);
    }
  }
  return ranks;
}

/** A text's token count, and whether the text is plain (see `isPlainText`). */
export interface CheckedCount {
  tokens: number;
  plain: boolean;
}

/**
 * Counts tokens exactly as js-tiktoken's `encode(text, [], []).length`: the same pre-tokenizer regex and
 * the same byte-pair merge over the same ranks, with a per-piece cache in front. Tiktoken encodes each
 * regex piece on its own, so a text's count is the sum of its pieces' counts; OCR text repeats the same
 * words over and over, so cached piece counts make the merge rare. Checked against js-tiktoken and the
 * independent gpt-tokenizer in the tests.
 */
export class TokenCounter {
  private readonly pattern: RegExp;
  private readonly ranks: Map<string, number>;
  /**
   * Piece → its token count times 2, plus 1 when the piece is not plain. Plainness rides along with the
   * count so that `countChecked` answers `isPlainText` from the pass it makes anyway.
   */
  private readonly cache = new Map<string, number>();

  constructor(
    readonly encoding: Encoding,
    private readonly maxCacheEntries = 100_000,
  ) {
    const data = rankData[encoding];
    this.pattern = new RegExp(data.pat_str, 'gu');
    this.ranks = loadRanks(data);
  }

  /** Forgets cached piece counts (benchmarks start both measurements cold). */
  clearCache(): void {
    this.cache.clear();
  }

  count(text: string): number {
    let total = 0;
    const pattern = this.pattern;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const piece = m[0];
      const entry = this.cache.get(piece) ?? this.learn(piece);
      total += entry >> 1;
    }
    return total;
  }

  /**
   * `count(text)`, and `isPlainText(text)` from the same pass: a text is plain when all its pieces are.
   * The pieces cover the text: every character is a letter, a digit, whitespace or none of these, and
   * each kind starts a match of some alternative (both encodings; with the `u` flag a lone surrogate is
   * "none of these"), so each match begins where the last one ended.
   */
  countChecked(text: string): CheckedCount {
    let total = 0;
    let notPlain = 0;
    const pattern = this.pattern;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const entry = this.cache.get(m[0]) ?? this.learn(m[0]);
      total += entry >> 1;
      notPlain |= entry & 1;
    }
    return { tokens: total, plain: notPlain === 0 };
  }

  /** Counts a piece the cache does not hold, and caches it. */
  private learn(piece: string): number {
    const entry =
      this.bytePairCount(Buffer.from(piece, 'utf8').toString('latin1')) * 2 + (isPlainText(piece) ? 0 : 1);
    // Bounded: a full cache starts over rather than growing with the batch.
    if (this.cache.size >= this.maxCacheEntries) this.cache.clear();
    this.cache.set(ownString(piece), entry);
    return entry;
  }

  /** js-tiktoken's bytePairMerge over `bytes` (one char per byte), counting the resulting parts. */
  private bytePairCount(bytes: string): number {
    if (bytes.length <= 1) return bytes.length;
    if (this.ranks.has(bytes)) return 1;
    // The scan below is quadratic in the piece's length: fine for words, but one long run of letters
    // (OCR noise) would stall the build for minutes. Long pieces take the heap version: same merges.
    if (bytes.length > LONG_PIECE_BYTES) return bytePairCountLong(bytes, this.ranks);
    const starts: number[] = [];
    for (let i = 0; i <= bytes.length; i++) starts.push(i);
    // starts[i]..starts[i+1] is part i; merge the adjacent pair with the lowest rank until none has one.
    while (starts.length > 2) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < starts.length - 2; i++) {
        const rank = this.ranks.get(bytes.slice(starts[i] as number, starts[i + 2] as number));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      starts.splice(best + 1, 1);
    }
    return starts.length - 1;
  }
}

/**
 * The piece as a string of its own. V8 returns a match of 13 or more characters as a slice that keeps
 * the whole matched text alive: a cache of such pieces kept a document's text per distinct long piece
 * (OCR noise, reference numbers), 150 MB at 50,000 documents with one new long word each. Prepending a
 * character makes a new string that slicing flattens into a copy, so only the piece's length is kept.
 */
function ownString(piece: string): string {
  return piece.length < 13 ? piece : ` ${piece}`.slice(1);
}

/**
 * At the end: a symbol (not whitespace, a letter, a digit, a combining mark — which letter pieces take
 * — or a lone surrogate, which a preceding one could pair) followed by line breaks.
 */
const SYMBOL_THEN_BREAKS = /[^\s\p{L}\p{N}\p{M}\uD800-\uDFFF][\r\n]+$/u;

/**
 * Whether `count(prefix + text) === count(prefix) + count(text)` for every prefix ending with `literal`
 * (whatever comes before it, such as a document id) and every text `startsPiece` accepts. True when
 * `literal` ends with a symbol followed by line breaks, as in `Document {{documentId}}:\n\n{{text}}`.
 *
 * Why, for both encodings' pre-tokenizer: a piece holding that symbol can only be the punctuation
 * alternative ` ?[^\s\p{L}\p{N}]+[\r\n/]*` (cl100k: `[\r\n]*`); the letter alternatives may start with
 * a symbol only when a letter or mark follows, and a line break follows. That piece runs through the
 * line breaks and stops at the text's first character unless it is CR, LF or '/'. No attempt at an
 * earlier piece looks past the symbol, so the pieces up to there are the prefix's own; the patterns have
 * no lookbehind, so the text's pieces are its own. Property-tested against the joined count.
 */
export function splitsAfter(literal: string): boolean {
  return SYMBOL_THEN_BREAKS.test(literal);
}

/** Whether a text after a `splitsAfter` literal starts a piece of its own (see there). */
export function startsPiece(text: string): boolean {
  if (text.length === 0) return false;
  const c = text.charCodeAt(0);
  return c !== 0x0a && c !== 0x0d && c !== 0x2f;
}

/** Above this many bytes a piece is merged with a heap (O(n log n)) instead of a rescan per merge. */
const LONG_PIECE_BYTES = 256;

/**
 * The same merges as TokenCounter's scan (lowest rank first, the leftmost among equal ranks), found with
 * a min-heap of adjacent pairs instead of a rescan of every pair per merge. Parts are a linked list of
 * start offsets. A heap key is `rank * 2^32 + start`, so number order is (rank, start) order; an entry
 * is stale when its left part was merged away or the pair starting there no longer has that rank (a
 * rank names one byte string, so the same rank at the same start means the same pair).
 */
export function bytePairCountLong(bytes: string, ranks: Map<string, number>): number {
  const n = bytes.length;
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  const alive = new Uint8Array(n + 1).fill(1);
  for (let i = 0; i <= n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const SHIFT = 2 ** 32;
  const heap = new MinHeap();
  /** The rank of the pair of parts starting at `start`, if it merges. */
  const pairRank = (start: number): number | undefined => {
    const mid = next[start] as number;
    return mid < n ? ranks.get(bytes.slice(start, next[mid])) : undefined;
  };
  const pushPair = (start: number) => {
    const rank = start < 0 ? undefined : pairRank(start);
    if (rank !== undefined) heap.push(rank * SHIFT + start);
  };
  for (let i = 0; i < n - 1; i++) pushPair(i);
  let parts = n;
  for (let key = heap.pop(); key !== undefined; key = heap.pop()) {
    const start = key % SHIFT;
    if (!alive[start] || pairRank(start) !== Math.floor(key / SHIFT)) continue;
    const mid = next[start] as number;
    const end = next[mid] as number;
    alive[mid] = 0;
    next[start] = end;
    prev[end] = start;
    parts--;
    pushPair(prev[start] as number);
    pushPair(start);
  }
  return parts;
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const items = this.items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as number) <= value) break;
      items[i] = items[parent] as number;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= items.length) break;
      const r = l + 1;
      const child = r < items.length && (items[r] as number) < (items[l] as number) ? r : l;
      if ((items[child] as number) >= last) break;
      items[i] = items[child] as number;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

const counters = new Map<Encoding, TokenCounter>();

/** The shared counter of an encoding. */
export function tokenCounter(encoding: Encoding): TokenCounter {
  let c = counters.get(encoding);
  if (!c) {
    c = new TokenCounter(encoding);
    counters.set(encoding, c);
  }
  return c;
}

/** Tokens of plain text; special-token strings count as ordinary text (they are refused earlier). */
export function countTextTokens(encoding: Encoding, text: string): number {
  return tokenCounter(encoding).count(text);
}

/** OpenAI cookbook: 3 tokens framing each message, plus 3 priming the assistant's reply. */
export const TOKENS_PER_MESSAGE = 3;
export const REPLY_PRIMING_TOKENS = 3;

/**
 * Tokens of one chat example, counted the way OpenAI's cookbook does (`num_tokens_from_messages`):
 * per message 3 + tokens(role) + tokens(content), plus 3 for the reply priming.
 */
export function countChatTokens(encoding: Encoding, messages: readonly ChatMessage[]): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const m of messages) {
    total += TOKENS_PER_MESSAGE + countTextTokens(encoding, m.role) + countTextTokens(encoding, m.content);
  }
  return total;
}

/** Special-token strings such as `<|endoftext|>`, `<|im_start|>`, `<|fim_prefix|>`. */
export const SPECIAL_TOKEN_PATTERN = /<\|[A-Za-z0-9_]+\|>/;
/** C0 control characters other than tab, line feed and carriage return, and DEL. */
export const CONTROL_CHAR_PATTERN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

export function findSpecialToken(text: string): string | undefined {
  // Cheap pre-check: most texts have no "<|" at all.
  if (!text.includes('<|')) return undefined;
  return SPECIAL_TOKEN_PATTERN.exec(text)?.[0];
}

/**
 * Whether `json` (a `JSON.stringify` result) may encode a control character that CONTROL_CHAR_PATTERN
 * matches: JSON escapes U+0000–U+001F as `\uXXXX`, except U+0008 and U+000C (`\b`, `\f`) and the
 * allowed tab, line feed and carriage return; DEL stays raw. False means certainly none; true means
 * look with findControlChar (`\u` also encodes lone surrogates). Walking the escapes of an encoding
 * the builder needs anyway is several times cheaper than the pattern over the text.
 */
export function jsonMayHoldControlChar(json: string): boolean {
  if (json.includes('\u007F')) return true;
  // Every backslash in JSON output starts an escape; skip the escaped character itself.
  for (let i = json.indexOf('\\'); i !== -1; i = json.indexOf('\\', i + 2)) {
    const c = json.charCodeAt(i + 1);
    if (c === 0x75 /* u */ || c === 0x62 /* b */ || c === 0x66 /* f */) return true;
  }
  return false;
}

export function findControlChar(text: string): { index: number; code: string } | undefined {
  const m = CONTROL_CHAR_PATTERN.exec(text);
  if (!m) return undefined;
  return { index: m.index, code: `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}` };
}
