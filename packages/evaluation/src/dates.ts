// Dates: read from ISO (2026-04-03, 2026/04/03, an ISO date-time's date), numeric day-first or
// month-first (03.04.2026, 3/4/2026, 04-03-26) and written months in English, German, French, Spanish,
// Italian and Dutch (3 April 2026, April 3, 2026, 3 Apr 2026, 3. April 2026, 3 avril 2026, 3 de abril
// de 2026), into one number yyyymmdd.

/** Which number comes first in a numeric date that could be read both ways (03/04/2026). */
export type DateOrder = 'dmy' | 'mdy';

const MONTH_NAMES: Array<[number, string]> = [
  [1, 'january jan januar janner janvier janv enero ene gennaio gen januari'],
  [2, 'february feb febr februar fevrier fevr febrero febbraio februari'],
  [3, 'march mar marz mars marzo maart mrt'],
  [4, 'april apr avril avr abril abr aprile'],
  [5, 'may mai mayo maggio mag mei'],
  [6, 'june jun juni juin junio giugno giu'],
  [7, 'july jul juli juillet juil julio luglio lug'],
  [8, 'august aug aout agosto ago augustus'],
  [9, 'september sep sept septembre septiembre setiembre settembre set'],
  [10, 'october oct oktober octobre octubre ottobre ott okt'],
  [11, 'november nov novembre noviembre'],
  [12, 'december dec dezember dez decembre diciembre dic dicembre'],
];
const MONTHS = new Map<string, number>();
for (const [month, names] of MONTH_NAMES) for (const name of names.split(' ')) MONTHS.set(name, month);

const ISO =
  /^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:t\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?$/;
const NUMERIC = /^(\d{1,2})\s*([./-])\s*(\d{1,2})\s*\2\s*(\d{4}|\d{2})\.?$/;
const DAY_FIRST =
  /^(\d{1,2})(?:st|nd|rd|th|er|º|°)?\.?[\s-]*(?:de\s+)?(\p{L}+)\.?,?[\s-]*(?:de\s+)?(\d{4})$/u;
const MONTH_FIRST = /^(\p{L}+)\.?\s*(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/u;
const MARKS = /\p{M}/gu;

function monthOf(name: string): number | undefined {
  return MONTHS.get(name.normalize('NFD').replace(MARKS, ''));
}

function daysIn(year: number, month: number): number {
  return month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : 30 + ((month + (month >> 3)) & 1);
}

function packed(year: number, month: number, day: number): number | null {
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  return year * 10_000 + month * 100 + day;
}

function prepare(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}

/**
 * Reads a date as yyyymmdd, or null when the text is not a date this reads. A numeric date whose
 * first two numbers could both be the month is read in `order`, except with dots, which are day-first by
 * convention (03.04.2026 is 3 April). Two-digit years are 2000-2099.
 */
export function parseDate(text: string, order: DateOrder): number | null {
  const s = prepare(text);
  let m = ISO.exec(s);
  if (m) return packed(Number(m[1]), Number(m[3]), Number(m[4]));
  m = NUMERIC.exec(s);
  if (m) {
    const a = Number(m[1]);
    const b = Number(m[3]);
    const year = (m[4] as string).length === 2 ? 2000 + Number(m[4]) : Number(m[4]);
    const dayFirst = a > 12 ? true : b > 12 ? false : m[2] === '.' || order === 'dmy';
    return dayFirst ? packed(year, b, a) : packed(year, a, b);
  }
  m = DAY_FIRST.exec(s);
  if (m) {
    const month = monthOf(m[2] as string);
    return month === undefined ? null : packed(Number(m[3]), month, Number(m[1]));
  }
  m = MONTH_FIRST.exec(s);
  if (m) {
    const month = monthOf(m[1] as string);
    return month === undefined ? null : packed(Number(m[3]), month, Number(m[2]));
  }
  return null;
}

/**
 * The order a numeric date is written in, when the text itself shows it: dots (day-first by convention),
 * or a first or second number above 12. Undefined for ISO, written months and ambiguous numeric dates.
 */
export function dateOrderOf(text: string): DateOrder | undefined {
  const m = NUMERIC.exec(prepare(text));
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[3]);
  if (a > 12 && b <= 12) return 'dmy';
  if (b > 12 && a <= 12) return 'mdy';
  return m[2] === '.' ? 'dmy' : undefined;
}
