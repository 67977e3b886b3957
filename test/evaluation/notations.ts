// Writers of amounts and dates in the notations the scorer reads, for the property tests.

export interface AmountNotation {
  decimal: '.' | ',';
  group: '' | '.' | ',' | ' ' | "'" | '\u00a0' | '\u202f';
  currency: 'none' | 'symbol-before' | 'symbol-after' | 'code-before' | 'code-after' | 'code-glued';
  negative: 'minus' | 'unicode-minus' | 'parentheses' | 'trailing';
}

const SYMBOL: Record<string, string> = { EUR: '€', GBP: '£', USD: 'US$', INR: '₹' };

/** `cents` written in a notation (always with two decimals, so never ambiguous). */
export function writeAmount(cents: bigint, n: AmountNotation, currency: keyof typeof SYMBOL): string {
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const intText = (abs / 100n).toString();
  let grouped = '';
  for (let i = 0; i < intText.length; i++) {
    if (i > 0 && (intText.length - i) % 3 === 0) grouped += n.group;
    grouped += intText[i];
  }
  let body = `${grouped}${n.decimal}${(abs % 100n).toString().padStart(2, '0')}`;
  if (negative) {
    if (n.negative === 'minus') body = `-${body}`;
    else if (n.negative === 'unicode-minus') body = `\u2212${body}`;
    else if (n.negative === 'trailing') body = `${body}-`;
  }
  let text = body;
  switch (n.currency) {
    case 'symbol-before':
      text = `${SYMBOL[currency]}${body}`;
      break;
    case 'symbol-after':
      text = `${body} ${SYMBOL[currency]}`;
      break;
    case 'code-before':
      text = `${currency} ${body}`;
      break;
    case 'code-after':
      text = `${body} ${currency}`;
      break;
    case 'code-glued':
      text = `${body}${currency}`;
      break;
  }
  return negative && n.negative === 'parentheses' ? `(${text})` : text;
}

export const MONTHS: Record<string, string[]> = {
  en: 'January February March April May June July August September October November December'.split(' '),
  de: 'Januar Februar März April Mai Juni Juli August September Oktober November Dezember'.split(' '),
  fr: 'janvier février mars avril mai juin juillet août septembre octobre novembre décembre'.split(' '),
  es: 'enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre'.split(' '),
  it: 'gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre'.split(
    ' ',
  ),
  nl: 'januari februari maart april mei juni juli augustus september oktober november december'.split(' '),
};

export interface CalendarDay {
  year: number;
  month: number;
  day: number;
}

const p2 = (n: number) => String(n).padStart(2, '0');
const yy = (year: number) => p2(year % 100);

/** Notations that say the order themselves (ISO, written months). */
export const ORDER_FREE: Array<(d: CalendarDay) => string> = [
  (d) => `${d.year}-${p2(d.month)}-${p2(d.day)}`,
  (d) => `${d.year}/${p2(d.month)}/${p2(d.day)}`,
  (d) => `${d.year}-${p2(d.month)}-${p2(d.day)}T10:30:00Z`,
  (d) => `${d.day} ${MONTHS.en![d.month - 1]} ${d.year}`,
  (d) => `${d.day} ${MONTHS.en![d.month - 1]!.slice(0, 3)} ${d.year}`,
  (d) => `${MONTHS.en![d.month - 1]} ${d.day}, ${d.year}`,
  (d) => `${MONTHS.en![d.month - 1]!.slice(0, 3)}. ${d.day}, ${d.year}`,
  (d) => `${d.day}. ${MONTHS.de![d.month - 1]} ${d.year}`,
  (d) => `${d.day} ${MONTHS.fr![d.month - 1]} ${d.year}`,
  (d) => `${d.day} de ${MONTHS.es![d.month - 1]} de ${d.year}`,
  (d) => `${d.day} ${MONTHS.it![d.month - 1]} ${d.year}`,
  (d) => `${d.day} ${MONTHS.nl![d.month - 1]} ${d.year}`,
  (d) => `${p2(d.day)}-${MONTHS.en![d.month - 1]!.slice(0, 3)}-${d.year}`,
];
export const DAY_FIRST: Array<(d: CalendarDay) => string> = [
  (d) => `${p2(d.day)}.${p2(d.month)}.${d.year}`,
  (d) => `${d.day}.${d.month}.${d.year}`,
  (d) => `${p2(d.day)}/${p2(d.month)}/${d.year}`,
  (d) => `${p2(d.day)}-${p2(d.month)}-${d.year}`,
  (d) => `${p2(d.day)}.${p2(d.month)}.${yy(d.year)}`,
  (d) => `${p2(d.day)}/${p2(d.month)}/${yy(d.year)}`,
];
export const MONTH_FIRST: Array<(d: CalendarDay) => string> = [
  (d) => `${p2(d.month)}/${p2(d.day)}/${d.year}`,
  (d) => `${d.month}/${d.day}/${d.year}`,
  (d) => `${p2(d.month)}-${p2(d.day)}-${d.year}`,
  (d) => `${p2(d.month)}/${p2(d.day)}/${yy(d.year)}`,
];

/** The calendar day `offset` days after 2000-01-01 (two-digit years read as 2000-2099). */
export function dayFrom(offset: number): CalendarDay {
  const date = new Date(Date.UTC(2000, 0, 1) + offset * 86_400_000);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}
