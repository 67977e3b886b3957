// How the simulator's models read OCR text: lines, whitespace tokens, the label words before each token,
// and the dates and amounts that start at a token. Written for the simulator alone (the scoring library
// has its own, stricter readers): a model and its judge should not share their mistakes.

export interface Token {
  /** Index of the line (0 = first non-empty line). */
  line: number;
  /** Position of the token within its line's tokens (and of its word in the line's words). */
  index: number;
  start: number;
  text: string;
}

export interface Line {
  text: string;
  tokens: Token[];
  /** Each token as a label word (labelWord), by token index. */
  words: string[];
}

export interface DateReading {
  /** yyyymmdd */
  day: number;
  /** How a numeric date was read; `fixed` when the text allows one reading only (ISO, month names). */
  reading: 'dmy' | 'mdy' | 'fixed';
}

export interface AnalysedText {
  lines: Line[];
  /** Every token in document order. */
  tokens: Token[];
}

const WORD_CHARS = /[^\p{L}]+/gu;
const HAS_DIGIT = /\d/;

/**
 * A token as a label word: its letters in lower case ("No.:" → "no"); "0" for anything with a digit
 * (values are not labels); a token of punctuation alone stays itself ("#", ":", "€").
 */
export function labelWord(token: string): string {
  let word = labelWords.get(token);
  if (word === undefined) {
    word = HAS_DIGIT.test(token) ? '0' : token.replace(WORD_CHARS, '').toLowerCase() || token;
    // Documents repeat their words; a bounded cache saves the regular expressions for most tokens.
    if (labelWords.size >= 50_000) labelWords.clear();
    labelWords.set(token, word);
  }
  return word;
}
const labelWords = new Map<string, string>();

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 13 || code === 0xa0 || code === 0x202f || code === 0x2009;
}

/** Lines (empty ones dropped) split into whitespace-separated tokens, each with its label word. */
export function analyse(text: string): AnalysedText {
  const lines: Line[] = [];
  const tokens: Token[] = [];
  let from = 0;
  while (from <= text.length) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const raw = text.slice(from, to);
    from = to + 1;
    const line: Line = { text: raw, tokens: [], words: [] };
    let i = 0;
    while (i < raw.length) {
      while (i < raw.length && isSpace(raw.charCodeAt(i))) i++;
      if (i >= raw.length) break;
      const start = i;
      while (i < raw.length && !isSpace(raw.charCodeAt(i))) i++;
      const token: Token = {
        line: lines.length,
        index: line.tokens.length,
        start,
        text: raw.slice(start, i),
      };
      line.tokens.push(token);
      line.words.push(labelWord(token.text));
      tokens.push(token);
    }
    if (line.tokens.length > 0) lines.push(line);
  }
  return { lines, tokens };
}

/** The label of a token: up to three words before it on its line (nearest last). */
export function labelOf(doc: AnalysedText, token: Token): string[] {
  return doc.lines[token.line]!.words.slice(Math.max(0, token.index - 3), token.index);
}

/** The anchors of a token: its last one, two and three label words, and its line when it starts one. */
export function anchorKeys(doc: AnalysedText, token: Token): string[] {
  const w = doc.lines[token.line]!.words;
  const i = token.index;
  const keys: string[] = [];
  if (i >= 1) keys.push(`w1:${w[i - 1]}`);
  if (i >= 2) keys.push(`w2:${w[i - 2]} ${w[i - 1]}`);
  if (i >= 3) keys.push(`w3:${w[i - 3]} ${w[i - 2]} ${w[i - 1]}`);
  if (i === 0) keys.push(`line:${token.line}`);
  return keys;
}

/** Anchor → the tokens where it stands, for every anchor of the text (what learning looks up). */
export function anchorIndex(doc: AnalysedText): Map<string, Token[]> {
  const index = new Map<string, Token[]>();
  for (const token of doc.tokens) {
    for (const key of anchorKeys(doc, token)) {
      const list = index.get(key);
      if (list) list.push(token);
      else index.set(key, [token]);
    }
  }
  return index;
}

/**
 * Anchor → tokens, for the given anchors only: what answering looks up. Only tokens whose previous
 * word ends one of the anchors get their keys built, so most tokens cost a set lookup.
 */
export function findAnchors(
  doc: AnalysedText,
  anchors: ReadonlySet<string>,
  lastWords: ReadonlySet<string>,
): Map<string, Token[]> {
  const found = new Map<string, Token[]>();
  const add = (key: string, token: Token) => {
    if (!anchors.has(key)) return;
    const list = found.get(key);
    if (list) list.push(token);
    else found.set(key, [token]);
  };
  for (const token of doc.tokens) {
    if (token.index === 0) {
      add(`line:${token.line}`, token);
      continue;
    }
    const w = doc.lines[token.line]!.words;
    const i = token.index;
    if (!lastWords.has(w[i - 1]!)) continue;
    add(`w1:${w[i - 1]}`, token);
    if (i >= 2) add(`w2:${w[i - 2]} ${w[i - 1]}`, token);
    if (i >= 3) add(`w3:${w[i - 3]} ${w[i - 2]} ${w[i - 1]}`, token);
  }
  return found;
}

// ---- values that start at a token ----

/** The token without the punctuation that ends a value in running text. */
export function tokenValue(token: Token): string {
  const value = token.text.replace(/[,;:)]+$/, '').replace(/^[(]+/, '');
  return /[\p{L}\d]/u.test(value) ? value : ''; // "#", "-", "€" are no values
}

/** From the token to a gap of two or more spaces (a column break) or the end of the line. */
export function restValue(line: Line, token: Token): string {
  const rest = line.text.slice(token.start);
  const gap = rest.search(/\s{2,}/);
  return (gap < 0 ? rest : rest.slice(0, gap)).replace(/[,;:]+$/, '').trim();
}

const MONTH_WORDS: Record<string, number> = {};
for (const [i, names] of [
  'january jan januar janvier enero gennaio januari',
  'february feb februar fevrier février febrero febbraio februari',
  'march mar märz marz mars marzo maart',
  'april apr avril abril aprile',
  'may mai mayo maggio mei',
  'june jun juni juin junio giugno',
  'july jul juli juillet julio luglio',
  'august aug août aout agosto augustus',
  'september sep sept septembre septiembre settembre',
  'october oct oktober octobre octubre ottobre',
  'november nov novembre noviembre',
  'december dec dezember décembre decembre diciembre dicembre',
].entries())
  for (const name of names.split(' ')) MONTH_WORDS[name] = i + 1;

const ISO_DATE = /(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)/y;
const NUMERIC_DATE = /(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)/y;
const NAMED_DAY_FIRST = /(\d{1,2})\.?\s+(\p{L}+)\.?\s+(\d{4})/uy;
const NAMED_MONTH_FIRST = /(\p{L}+)\.?\s+(\d{1,2}),?\s+(\d{4})/uy;

function valid(y: number, m: number, d: number): number | null {
  if (m < 1 || m > 12 || d < 1 || d > 31) return null;
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCMonth() === m - 1 ? y * 10_000 + m * 100 + d : null;
}

function at(re: RegExp, text: string, from: number): RegExpExecArray | null {
  re.lastIndex = from;
  return re.exec(text);
}

/** The readings of a date starting at `from` in `text` (a numeric one can have two). */
export function datesAt(text: string, from: number): DateReading[] {
  let m = at(ISO_DATE, text, from);
  if (m) {
    const day = valid(Number(m[1]), Number(m[2]), Number(m[3]));
    return day ? [{ day, reading: 'fixed' }] : [];
  }
  m = at(NUMERIC_DATE, text, from);
  if (m) {
    const a = Number(m[1]);
    const b = Number(m[3]);
    const y = m[4]!.length === 2 ? 2000 + Number(m[4]) : Number(m[4]);
    const out: DateReading[] = [];
    const dmy = valid(y, b, a);
    const mdy = valid(y, a, b);
    if (dmy) out.push({ day: dmy, reading: 'dmy' });
    if (mdy) out.push({ day: mdy, reading: 'mdy' });
    return out;
  }
  m = at(NAMED_DAY_FIRST, text, from);
  if (m) {
    const month = MONTH_WORDS[m[2]!.toLowerCase()];
    const day = month ? valid(Number(m[3]), month, Number(m[1])) : null;
    if (day) return [{ day, reading: 'fixed' }];
  }
  m = at(NAMED_MONTH_FIRST, text, from);
  if (m) {
    const month = MONTH_WORDS[m[1]!.toLowerCase()];
    const day = month ? valid(Number(m[3]), month, Number(m[2])) : null;
    if (day) return [{ day, reading: 'fixed' }];
  }
  return [];
}

const AMOUNT =
  /(?:(?:EUR|USD|GBP|CHF|[€£$])\s?)?(-?\d{1,3}(?:[.,' \u202f\u00a0]\d{3})+|-?\d+)([.,]\d{2})?(?!\d)/y;

/** The amount starting at `from`, in cents; "1.234,56", "1,234.56", "€ 1 234,56", "CHF 1'234.55", "17". */
export function amountAt(text: string, from: number): number | null {
  const m = at(AMOUNT, text, from);
  if (!m) return null;
  const whole = Number(m[1]!.replace(/[^\d-]/g, ''));
  if (!Number.isFinite(whole)) return null;
  const cents = m[2] ? Number(m[2].slice(1)) : 0;
  return whole < 0 || m[1]!.startsWith('-') ? whole * 100 - cents : whole * 100 + cents;
}

// ---- how answers write values ----

export type DateFormat = 'iso' | 'dd.mm.yyyy' | 'dd/mm/yyyy' | 'mm/dd/yyyy' | 'dd-mm-yyyy';

/** The date an answer wrote, and in which format (slashes read day-first unless the day shows otherwise). */
export function answerDate(value: string): { day: number; format: DateFormat } | null {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (m) {
    const day = valid(Number(m[1]), Number(m[2]), Number(m[3]));
    return day ? { day, format: 'iso' } : null;
  }
  m = /^(\d{2})([./-])(\d{2})\2(\d{4})$/.exec(value);
  if (!m) return null;
  const a = Number(m[1]);
  const b = Number(m[3]);
  const monthFirst = m[2] === '/' && b > 12;
  const day = monthFirst ? valid(Number(m[4]), a, b) : valid(Number(m[4]), b, a);
  if (!day) return null;
  const format: DateFormat =
    m[2] === '.' ? 'dd.mm.yyyy' : m[2] === '-' ? 'dd-mm-yyyy' : monthFirst ? 'mm/dd/yyyy' : 'dd/mm/yyyy';
  return { day, format };
}

export function writeDate(day: number, format: DateFormat): string {
  const y = String(Math.floor(day / 10_000));
  const m = String(Math.floor(day / 100) % 100).padStart(2, '0');
  const d = String(day % 100).padStart(2, '0');
  switch (format) {
    case 'iso':
      return `${y}-${m}-${d}`;
    case 'dd.mm.yyyy':
      return `${d}.${m}.${y}`;
    case 'dd/mm/yyyy':
      return `${d}/${m}/${y}`;
    case 'mm/dd/yyyy':
      return `${m}/${d}/${y}`;
    case 'dd-mm-yyyy':
      return `${d}-${m}-${y}`;
  }
}

/** An amount an answer wrote as text with two decimals ("1234.56", "1234,56"), in cents. */
export function answerAmountText(value: string): { cents: number; decimal: '.' | ',' } | null {
  const m = /^(-?)(\d+)([.,])(\d{2})$/.exec(value.trim());
  if (!m) return null;
  const cents = Number(m[2]) * 100 + Number(m[4]);
  return { cents: m[1] ? -cents : cents, decimal: m[3] as '.' | ',' };
}

/** 32-bit FNV-1a of a text, continued from `h`: cheap per-call randomness keyed by the input. */
export function fnv1a(text: string, h = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A float in [0, 1) from a 32-bit hash mixed with a salt (murmur3's finaliser). */
export function unitFloat(hash: number, salt: number): number {
  let h = (hash ^ Math.imul(salt + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
