import { getEncoding, type Tiktoken } from 'js-tiktoken';
import type { Encoding } from './catalogue.ts';

/** A chat message as the fine-tuning file holds it. */
export interface ChatMessage {
  role: string;
  content: string;
}

const encoders = new Map<Encoding, Tiktoken>();

/** The tokenizer for an encoding, loaded once per process (the rank tables are large). */
export function encoderFor(encoding: Encoding): Tiktoken {
  let enc = encoders.get(encoding);
  if (!enc) {
    enc = getEncoding(encoding);
    encoders.set(encoding, enc);
  }
  return enc;
}

interface TiktokenInternals {
  patStr: string;
  rankMap: Map<string, number>;
}

/**
 * Counts tokens exactly as `encoder.encode(text, [], []).length`, with a per-piece cache in front.
 * Tiktoken encodes each pre-tokenizer piece (regex match) on its own, so the count of a text is the sum
 * of its pieces' counts; OCR text repeats the same words over and over, so caching piece counts makes
 * js-tiktoken's slow byte-pair merge rare. Checked against js-tiktoken and gpt-tokenizer in the tests.
 */
export class TokenCounter {
  private readonly pattern: RegExp;
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number>();
  private readonly utf8 = new TextEncoder();

  constructor(
    readonly encoding: Encoding,
    private readonly maxCacheEntries = 200_000,
  ) {
    const internals = encoderFor(encoding) as unknown as TiktokenInternals;
    this.pattern = new RegExp(internals.patStr, 'gu');
    this.ranks = internals.rankMap;
  }

  count(text: string): number {
    let total = 0;
    this.pattern.lastIndex = 0;
    for (let m = this.pattern.exec(text); m !== null; m = this.pattern.exec(text)) {
      const piece = m[0];
      let n = this.cache.get(piece);
      if (n === undefined) {
        n = this.bytePairCount(this.utf8.encode(piece));
        // Bounded: a full cache starts over rather than growing with the batch.
        if (this.cache.size >= this.maxCacheEntries) this.cache.clear();
        this.cache.set(piece, n);
      }
      total += n;
    }
    return total;
  }

  /** js-tiktoken's bytePairMerge, counting the parts instead of mapping them to ranks. */
  private bytePairCount(bytes: Uint8Array): number {
    if (bytes.length <= 1 || this.ranks.has(bytes.join(','))) return bytes.length === 0 ? 0 : 1;
    const starts: number[] = [];
    for (let i = 0; i <= bytes.length; i++) starts.push(i);
    // starts[i]..starts[i+1] is part i; merge the adjacent pair with the lowest rank until none has one.
    while (starts.length > 2) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < starts.length - 2; i++) {
        const rank = this.ranks.get(bytes.subarray(starts[i] as number, starts[i + 2] as number).join(','));
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
  return SPECIAL_TOKEN_PATTERN.exec(text)?.[0];
}

export function findControlChar(text: string): { index: number; code: string } | undefined {
  const m = CONTROL_CHAR_PATTERN.exec(text);
  if (!m) return undefined;
  return { index: m.index, code: `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}` };
}
