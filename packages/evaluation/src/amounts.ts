// Amounts: read from the notations invoices use ("1.234,56", "1,234.56", "1 234,56", "1'234.56", with
// or without a currency sign or code, negative as "-1,00", "−1,00", "1,00-" or "(1,00)") into an exact
// decimal, compared after rounding to the cent (or to the expected value's own precision when finer).

/** An exact decimal: digits as text, so no binary rounding ever enters a comparison. */
export interface Decimal {
  negative: boolean;
  /** Integer digits, no leading zeros ("0" for none). */
  int: string;
  /** Fraction digits, no trailing zeros ("" for none). */
  frac: string;
}

export type DecimalSeparator = '.' | ',';

export interface ParsedAmount extends Decimal {
  /** ISO code ("EUR") or a symbol family ("$", "¥", "kr") when written; undefined when not. */
  currency: string | undefined;
  /** The decimal separator this text showed unambiguously, for reading other values alike. */
  separatorHint: DecimalSeparator | undefined;
}

// Common ISO 4217 codes; any other three letters are not a currency (so "abc 12" is not an amount).
const CODES = new Set(
  (
    'EUR USD GBP CHF JPY CNY SEK NOK DKK ISK PLN CZK HUF RON BGN HRK RSD TRY RUB UAH CAD AUD NZD HKD SGD ' +
    'INR BRL MXN ARS CLP COP PEN ZAR KRW TWD THB MYR IDR PHP VND AED SAR ILS EGP NGN KES MAD'
  ).split(' '),
);
// Symbols and what they stand for: a code, or a family that several codes share.
const SYMBOLS: Record<string, string> = {
  '€': 'EUR',
  '£': 'GBP',
  '₹': 'INR',
  '₽': 'RUB',
  '₺': 'TRY',
  '₩': 'KRW',
  '₪': 'ILS',
  zł: 'PLN',
  kč: 'CZK',
  us$: 'USD',
  c$: 'CAD',
  a$: 'AUD',
  r$: 'BRL',
  'fr.': 'CHF',
  $: '$',
  '¥': '¥',
  kr: 'kr',
};
const FAMILIES: Record<string, ReadonlySet<string>> = {
  $: new Set(['USD', 'CAD', 'AUD', 'NZD', 'HKD', 'SGD', 'MXN', 'ARS', 'CLP', 'COP', 'TWD']),
  '¥': new Set(['JPY', 'CNY']),
  kr: new Set(['SEK', 'NOK', 'DKK', 'ISK']),
};

/** Two written currencies are compatible when either is absent, they are equal, or a symbol covers a code. */
export function sameCurrency(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a === b) return true;
  return FAMILIES[a]?.has(b) === true || FAMILIES[b]?.has(a) === true;
}

const CURRENCY = String.raw`(?:[A-Za-z]{3}|us\$|c\$|a\$|r\$|fr\.|zł|kč|kr|[€£$¥₹₽₺₩₪])`;
const SIGN = '[-−+]';
// sign? currency? sign? body (",-" = no cents) sign? currency? sign?, optionally inside parentheses.
const AMOUNT = new RegExp(
  String.raw`^(\()?\s*(${SIGN})?\s*(${CURRENCY})?\s*(${SIGN})?\s*([0-9](?:[0-9., '’]*[0-9])?)([.,]-{1,2})?\s*(${SIGN})?\s*(${CURRENCY})?\s*(${SIGN})?\s*(\))?$`,
  'iu',
);
const SEPARATORS = /[., '’]/g;

function currencyOf(raw: string | undefined): string | undefined | null {
  if (raw === undefined) return undefined;
  const lower = raw.toLowerCase();
  if (lower in SYMBOLS) return SYMBOLS[lower];
  const upper = raw.toUpperCase();
  return CODES.has(upper) ? upper : null;
}

/**
 * Reads an amount, or returns null when the text is not one. `hint` is the decimal separator to assume
 * when the text cannot say: a single "." or "," followed by exactly three digits ("1.234", "12,500") is a
 * thousands group unless `hint` names that character as the decimal separator.
 */
export function parseAmount(text: string, hint?: DecimalSeparator): ParsedAmount | null {
  const m = AMOUNT.exec(text.normalize('NFKC').trim());
  if (!m) return null;
  const [, open, sign1, cur1, sign2, body, noCents, sign3, cur2, sign4, close] = m;
  if (Boolean(open) !== Boolean(close)) return null;
  const signs = [sign1, sign2, sign3, sign4].filter((s) => s !== undefined);
  if (signs.length > 1 || (open && signs.length > 0)) return null;
  const before = currencyOf(cur1);
  const after = currencyOf(cur2);
  if (before === null || after === null) return null;
  // Both a sign and a code ("£12.00 GBP") must agree; the more specific one (a code) is kept.
  if (before !== undefined && after !== undefined && !sameCurrency(before, after)) return null;
  const currency =
    before !== undefined && after !== undefined && before in FAMILIES ? after : (before ?? after);
  const number = readNumber(body as string, noCents !== undefined, hint);
  if (!number) return null;
  const negative = (open !== undefined || (signs[0] !== undefined && signs[0] !== '+')) && !isZero(number);
  return { ...number, negative, currency };
}

function isZero(d: Pick<Decimal, 'int' | 'frac'>): boolean {
  return d.int === '0' && d.frac === '';
}

function readNumber(
  body: string,
  noCents: boolean,
  hint: DecimalSeparator | undefined,
): (Omit<Decimal, 'negative'> & { separatorHint: DecimalSeparator | undefined }) | null {
  const seps = body.match(SEPARATORS) ?? [];
  const groups = body.split(SEPARATORS);
  if (groups.some((g) => g === '')) return null;
  let decimal = false; // is the last separator the decimal one?
  let ambiguous = false;
  const last = seps.at(-1);
  if (!noCents && (last === '.' || last === ',') && seps.filter((s) => s === last).length === 1) {
    const first = groups[0] as string;
    // One "." or "," after a group of 1-3 digits (no leading 0) and before exactly 3: "1.234" could be
    // either; anything else with that character once is a decimal separator.
    ambiguous =
      seps.length === 1 && (groups[1] as string).length === 3 && first.length <= 3 && first[0] !== '0';
    decimal = ambiguous ? hint === last : true;
  }
  const intGroups = decimal ? groups.slice(0, -1) : groups;
  const grouping = decimal ? seps.slice(0, -1) : seps;
  if (grouping.length > 0) {
    const char = grouping[0];
    if (grouping.some((s) => s !== char)) return null;
    if ((intGroups[0] as string).length > 3 || intGroups.slice(1).some((g) => g.length !== 3)) return null;
  }
  // What the text says about the decimal separator, when it says it without a hint.
  let separatorHint: DecimalSeparator | undefined;
  if (!ambiguous) {
    if (decimal) separatorHint = last as DecimalSeparator;
    else if (grouping[0] === '.') separatorHint = ',';
    else if (grouping[0] === ',') separatorHint = '.';
  }
  const int = intGroups.join('').replace(/^0+(?=\d)/, '');
  const frac = decimal ? (groups.at(-1) as string).replace(/0+$/, '') : '';
  return { int, frac, separatorHint };
}

/** A finite JSON number as an exact decimal (through its shortest round-trip text, as JSON writes it). */
export function decimalOfNumber(n: number): Decimal | null {
  if (!Number.isFinite(n)) return null;
  const text = String(Math.abs(n));
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text);
  if (!m) return null;
  let digits = (m[1] as string) + (m[2] ?? '');
  let point = (m[1] as string).length + Number(m[3] ?? 0);
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits = digits.padEnd(point, '0');
  const int = digits.slice(0, point).replace(/^0+(?=\d)/, '') || '0';
  const frac = digits.slice(point).replace(/0+$/, '');
  return { negative: n < 0 && !(int === '0' && frac === ''), int, frac };
}

/** The decimal rounded half away from zero to `places` fraction digits, as signed text ("-123456"). */
export function roundedDigits(d: Decimal, places: number): string {
  const kept = d.int + d.frac.slice(0, places).padEnd(places, '0');
  let digits = kept.replace(/^0+(?=\d)/, '');
  if ((d.frac[places] ?? '0') >= '5') digits = (BigInt(digits) + 1n).toString();
  return digits === '0' || !d.negative ? digits : `-${digits}`;
}
