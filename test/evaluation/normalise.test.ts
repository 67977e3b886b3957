// The normalisers: the same amount, date or text written any supported way compares equal, different
// values never do (properties), and each rule by hand, including the ambiguous cases.
import {
  compareField,
  type FieldSpec,
  type FieldType,
  inferFieldSpecs,
  type JsonValue,
  normaliseText,
  parseAmount,
  parseDate,
} from '@tuneline/evaluation';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AmountNotation,
  type CalendarDay,
  DAY_FIRST,
  dayFrom,
  MONTH_FIRST,
  ORDER_FREE,
  writeAmount,
} from './notations.ts';

const spec = (type: FieldType, extra: Partial<FieldSpec> = {}): FieldSpec => ({
  name: 'f',
  type,
  source: 'declared',
  dateOrder: 'dmy',
  decimalSeparator: undefined,
  ...extra,
});

const notation: fc.Arbitrary<AmountNotation> = fc
  .record({
    decimal: fc.constantFrom('.', ','),
    group: fc.constantFrom('', '.', ',', ' ', "'", '\u00a0', '\u202f'),
    currency: fc.constantFrom(
      'none',
      'symbol-before',
      'symbol-after',
      'code-before',
      'code-after',
      'code-glued',
    ),
    negative: fc.constantFrom('minus', 'unicode-minus', 'parentheses', 'trailing'),
  } as const)
  .filter((n) => n.group !== n.decimal);
const cents = fc.bigInt({ min: -(10n ** 11n), max: 10n ** 11n });
const currency = fc.constantFrom('EUR', 'GBP', 'USD', 'INR');
/** An amount as text in some notation, or as a JSON number. */
const written = (value: bigint, cur: 'EUR' | 'GBP' | 'USD' | 'INR') =>
  fc.oneof(
    notation.map((n): JsonValue => writeAmount(value, n, cur)),
    fc.constant<JsonValue>(Number(value) / 100),
  );

describe('amounts (properties)', () => {
  it('the same amount in any two notations, with or without a currency on either side, compares equal', () => {
    fc.assert(
      fc.property(
        cents.chain((c) =>
          currency.chain((cur) => fc.tuple(fc.constant(c), written(c, cur), written(c, cur))),
        ),
        ([, expected, answered]) => {
          expect(compareField(spec('amount'), expected, answered)).toBe('correct');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('different amounts never compare equal, whatever the notations', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(cents, cents, currency, currency)
          .filter(([a, b]) => a !== b)
          .chain(([a, b, c1, c2]) => fc.tuple(written(a, c1), written(b, c2))),
        ([expected, answered]) => {
          expect(compareField(spec('amount'), expected, answered)).toBe('wrong');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('the same number in two different currencies never compares equal', () => {
    const withCode = notation.filter((n) => n.currency.startsWith('code') || n.currency.startsWith('symbol'));
    fc.assert(
      fc.property(
        cents,
        fc.tuple(currency, currency).filter(([a, b]) => a !== b),
        withCode,
        withCode,
        (c, [c1, c2], n1, n2) => {
          expect(compareField(spec('amount'), writeAmount(c, n1, c1), writeAmount(c, n2, c2))).toBe('wrong');
        },
      ),
      { numRuns: 500 },
    );
  });
});

const day = fc.integer({ min: 0, max: 36_500 }).map(dayFrom);
const dateIn = (d: CalendarDay, order: 'dmy' | 'mdy') =>
  fc.constantFrom(...ORDER_FREE, ...(order === 'dmy' ? DAY_FIRST : MONTH_FIRST)).map((write) => write(d));

describe('dates (properties)', () => {
  it('the same day in any two notations of one order (or order-free ones) compares equal', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(day, fc.constantFrom('dmy', 'mdy') as fc.Arbitrary<'dmy' | 'mdy'>)
          .chain(([d, order]) => fc.tuple(fc.constant(order), dateIn(d, order), dateIn(d, order))),
        ([order, expected, answered]) => {
          expect(compareField(spec('date', { dateOrder: order }), expected, answered)).toBe('correct');
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('different days never compare equal', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(day, day, fc.constantFrom('dmy', 'mdy') as fc.Arbitrary<'dmy' | 'mdy'>)
          .filter(([a, b]) => a.year !== b.year || a.month !== b.month || a.day !== b.day)
          .chain(([a, b, order]) => fc.tuple(fc.constant(order), dateIn(a, order), dateIn(b, order))),
        ([order, expected, answered]) => {
          expect(compareField(spec('date', { dateOrder: order }), expected, answered)).toBe('wrong');
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe('text (properties)', () => {
  /** The same text with other case, other whitespace runs and NFKC-equivalent characters. */
  const variant = (s: string) =>
    fc
      .tuple(
        fc.array(fc.constantFrom('upper', 'lower', 'keep', 'fullwidth'), {
          minLength: s.length,
          maxLength: s.length,
        }),
        fc.constantFrom(' ', '  ', '\t', '\n', '\u00a0', ' \u2003 '),
        fc.constantFrom('', ' ', '\n'),
      )
      .map(([ops, space, edge]) => {
        let out = '';
        for (const [i, ch] of [...s].entries()) {
          if (ch === ' ') out += space;
          else if (ops[i] === 'upper') out += ch.toUpperCase();
          else if (ops[i] === 'lower') out += ch.toLowerCase();
          else if (ops[i] === 'fullwidth' && ch >= '!' && ch <= '~')
            out += String.fromCharCode(ch.charCodeAt(0) + 0xfee0);
          else out += ch;
        }
        return edge + out + edge;
      });
  const words = fc
    .array(fc.stringMatching(/^[A-Za-z0-9äöüßéèàçñ.&-]{1,8}$/), { minLength: 1, maxLength: 5 })
    .map((w) => w.join(' '));

  it('case, whitespace and compatibility forms do not matter', () => {
    fc.assert(
      fc.property(
        words.chain((s) => fc.tuple(variant(s), variant(s))),
        ([a, b]) => {
          expect(compareField(spec('text'), a, b)).toBe('correct');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('texts that differ after normalisation never compare equal', () => {
    fc.assert(
      fc.property(
        fc.tuple(words, words).filter(([a, b]) => normaliseText(a) !== normaliseText(b)),
        ([a, b]) => {
          expect(compareField(spec('text'), a, b)).toBe('wrong');
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('amounts (rules by hand)', () => {
  it.each([
    ['1.234,56', '1,234.56', 'correct'],
    ['1 234,56', "1'234.56", 'correct'],
    ['EUR 12.00', '12,00 €', 'correct'],
    ['EUR 12.00', '12.00', 'correct'], // a currency on one side only: the number decides
    ['EUR 12.00', '£12.00', 'wrong'],
    ['USD 12.00', '$12.00', 'correct'], // "$" stands for any dollar
    ['EUR 12.00', '$12.00', 'wrong'],
    ['GBP 12.00', '£12.00 GBP', 'correct'], // a sign and a code that agree
    ['USD 12.00', '$12.00 CAD', 'wrong'], // "$" and CAD agree: a Canadian dollar amount
    ['-12,50', '(12.50)', 'correct'],
    ['-12,50', '12,50-', 'correct'],
    ['-12,50', '−12,50', 'correct'],
    ['12.50', '-12.50', 'wrong'],
    ['1.234,-', '1234', 'correct'], // ",-": no cents
    ['1.234,00', '1.234', 'correct'], // "," is this value's decimal separator, so "." groups
    ['1,234.00', '1.234', 'wrong'], // "." is this value's decimal separator: 1.234
    ['1,234.00', '1,234', 'correct'],
  ] as const)('%j against %j: %s', (expected, answered, outcome) => {
    expect(compareField(spec('amount'), expected, answered)).toBe(outcome);
  });

  it('JSON numbers and numeric strings compare by value; bare digits in a text field do not', () => {
    expect(compareField(spec('amount'), 1234.5, '1234.5')).toBe('correct');
    expect(compareField(spec('amount'), '1234.50', 1234.5)).toBe('correct');
    expect(compareField(spec('amount'), 1234.5, '1.234,50 €')).toBe('correct');
    // An integer says nothing about separators: "1.234" and "1,234" are thousands.
    expect(compareField(spec('amount'), 1234, '1.234')).toBe('correct');
    expect(compareField(spec('amount'), 1234, '1,234')).toBe('correct');
    // A JSON number with a fraction is written with ".": "1.234" is then 1.234.
    expect(compareField(spec('amount'), 1.234, '1.234')).toBe('correct');
    expect(compareField(spec('amount'), 1.234, '1,234')).toBe('wrong');
    const [id] = inferFieldSpecs([{ id: '0042' }, { id: '20457' }]);
    expect(id!.type).toBe('text');
    expect(compareField(id!, '0042', 42)).toBe('wrong');
    expect(compareField(id!, '20457', 20457)).toBe('correct');
  });

  it('compares to the cent, or to the expected value’s finer precision', () => {
    expect(compareField(spec('amount'), 1234.5, 1234.504)).toBe('correct');
    expect(compareField(spec('amount'), 1234.5, 1234.506)).toBe('wrong'); // rounds to 1234.51
    expect(compareField(spec('amount'), -0.01, -0.005)).toBe('correct'); // half away from zero
    expect(compareField(spec('amount'), 0.125, 0.13)).toBe('wrong'); // three places expected
    expect(compareField(spec('amount'), 0.125, '0,125')).toBe('correct');
  });

  it('answers that are not amounts are unreadable, not wrong', () => {
    expect(compareField(spec('amount'), 12.5, 'twelve fifty')).toBe('unreadable');
    expect(compareField(spec('amount'), 12.5, true)).toBe('unreadable');
    expect(compareField(spec('amount'), 12.5, '12.5 XYZ')).toBe('unreadable'); // not a currency code
    expect(compareField(spec('amount'), 12.5, '1.2.5')).toBe('unreadable');
    expect(compareField(spec('amount'), 12.5, '€12.50 GBP')).toBe('unreadable'); // a sign and a code that disagree
    expect(parseAmount('1,23,456.00')).toBeNull(); // only groups of three
  });
});

describe('dates (rules by hand)', () => {
  it('reads the supported notations', () => {
    const april3 = 20260403;
    for (const text of [
      '2026-04-03',
      '2026/04/03',
      '2026-04-03T23:59:00+02:00',
      '03.04.2026',
      '3.4.26',
      '3. 4. 2026',
      'April 3, 2026',
      'Apr 3 2026',
      '3rd April 2026',
      '3 Apr 2026',
      '03-Apr-2026',
      '3. April 2026',
      '3 avril 2026',
      '3 de abril de 2026',
      '3 aprile 2026',
      '3 APRIL 2026',
    ])
      expect(parseDate(text, 'dmy'), text).toBe(april3);
    expect(parseDate('1er mars 2026', 'dmy')).toBe(20260301);
    expect(parseDate('3 März 2026', 'dmy')).toBe(20260303);
    expect(parseDate('29.02.2028', 'dmy')).toBe(20280229);
    for (const text of ['31.04.2026', '29.02.2026', '2026-13-01', '3 Foo 2026', 'soon', '03/04'])
      expect(parseDate(text, 'dmy'), text).toBeNull();
  });

  it('an ambiguous date is read in the order its expected value shows, else its field’s, else dmy', () => {
    // The expected value is ISO: it shows no order, so the field's (default dmy) decides.
    expect(compareField(spec('date'), '2026-04-03', '03/04/2026')).toBe('correct');
    expect(compareField(spec('date'), '2026-04-03', '04/03/2026')).toBe('wrong');
    expect(compareField(spec('date', { dateOrder: 'mdy' }), '2026-04-03', '04/03/2026')).toBe('correct');
    // The expected value shows month-first (25 > 12): an ambiguous answer is read month-first too.
    expect(compareField(spec('date'), '12/25/2026', '2026-12-25')).toBe('correct');
    expect(compareField(spec('date'), '04/13/2026', '04/13/26')).toBe('correct');
    // Unambiguous answers are read as written, whatever the order.
    expect(compareField(spec('date'), '2026-03-25', '03/25/2026')).toBe('correct');
    // Dots are day-first even under month-first.
    expect(compareField(spec('date', { dateOrder: 'mdy' }), '2026-04-03', '03.04.2026')).toBe('correct');
    // The field's order comes from the values that show one.
    const [usField] = inferFieldSpecs([{ d: '12/25/2026' }, { d: '04/03/2026' }]);
    expect(usField).toMatchObject({ type: 'date', dateOrder: 'mdy' });
    expect(compareField(usField!, '04/03/2026', '2026-04-03')).toBe('correct');
    const [mixed] = inferFieldSpecs([{ d: '12/25/2026' }, { d: '25/12/2026' }], { dateOrder: 'mdy' });
    expect(mixed!.dateOrder).toBe('mdy'); // the values disagree: the caller's default
  });

  it('an answer that is no date is unreadable', () => {
    expect(compareField(spec('date'), '2026-04-03', 'next Friday')).toBe('unreadable');
    expect(compareField(spec('date'), '2026-04-03', 20260403)).toBe('unreadable');
    expect(compareField(spec('date'), '2026-04-03', '31.04.2026')).toBe('unreadable');
  });
});

describe('text, booleans and nested values (rules by hand)', () => {
  it.each([
    ['Nordwind Logistik GmbH', 'NORDWIND  logistik\nGmbH ', 'correct'],
    ['Hafenstraße 12', 'HAFENSTRASSE 12', 'correct'],
    ['ACME', 'ＡＣＭＥ', 'correct'],
    ['ﬁne', 'fine', 'correct'],
    ['INV-4', 'INV 4', 'wrong'],
    ['Café', 'Cafe', 'wrong'], // accents are kept: NFKC does not strip them
  ] as const)('%j against %j: %s', (expected, answered, outcome) => {
    expect(compareField(spec('text'), expected, answered)).toBe(outcome);
  });

  it('booleans, numbers in text fields, and objects', () => {
    expect(compareField(spec('boolean'), true, 'TRUE')).toBe('correct');
    expect(compareField(spec('boolean'), true, false)).toBe('wrong');
    expect(compareField(spec('boolean'), true, 'yes')).toBe('unreadable');
    expect(compareField(spec('text'), 'A7', { v: 'A7' })).toBe('unreadable');
    const lines = [{ item: 'Toner', amount: '1.234,00', date: '03.04.2026' }];
    expect(compareField(spec('json'), lines, [{ date: '2026-04-03', amount: 1234, item: 'TONER' }])).toBe(
      'correct',
    );
    expect(compareField(spec('json'), lines, [{ date: '2026-04-03', amount: 1234 }])).toBe('wrong');
    expect(compareField(spec('json'), lines, [])).toBe('wrong');
  });

  it('a declared type wins over the shape; an expected value unreadable as its type compares as text', () => {
    const [code] = inferFieldSpecs([{ code: '12.50' }], { fieldTypes: { code: 'text' } });
    expect(code).toMatchObject({ type: 'text', source: 'declared' });
    expect(compareField(code!, '12.50', '12,50')).toBe('wrong');
    expect(compareField(spec('date'), 'unknown', 'UNKNOWN')).toBe('correct');
  });
});

describe('missing against null', () => {
  it.each([
    // expected, answered (undefined: key absent), outcome
    ['INV-1', undefined, 'missing'],
    ['INV-1', null, 'null'],
    ['INV-1', 'INV-1', 'correct'],
    [null, undefined, 'missing'],
    [null, null, 'correct'],
    [null, 'INV-1', 'spurious'],
    [null, '', 'spurious'], // an empty string is a value, not null
  ] as const)('expected %j, answered %j: %s', (expected, answered, outcome) => {
    expect(compareField(spec('text'), expected, answered)).toBe(outcome);
  });
});

describe('field types from the expected values', () => {
  it('decides once per field from every example', () => {
    const specs = inferFieldSpecs(
      [
        { n: 'INV-1', d: '2026-04-03', t: 10.5, s: '1.234,50', id: '0042', ok: true, po: null, x: 'a' },
        { n: 'INV-2', d: '03.04.2026', t: 3, s: '99', id: '0043', ok: false, po: null, x: 5, lines: [1] },
      ],
      { dateOrder: 'mdy' },
    );
    expect(Object.fromEntries(specs.map((s) => [s.name, s.type]))).toEqual({
      n: 'text',
      d: 'date',
      t: 'amount',
      s: 'amount', // "99" beside an amount text is an amount
      id: 'text', // bare digits only: identifiers
      ok: 'boolean',
      po: 'text', // never a value: only null against null matters
      x: 'text', // a mix
      lines: 'json',
    });
    expect(specs.find((s) => s.name === 'd')!.dateOrder).toBe('dmy'); // shown by the dots
    expect(specs.find((s) => s.name === 's')!.decimalSeparator).toBe(',');
    expect(specs.find((s) => s.name === 'n')!.dateOrder).toBe('mdy'); // nothing shown: the default
  });

  it('scores the configuration’s fields in its order when given', () => {
    const specs = inferFieldSpecs([{ b: 1, a: 2, c: 3 }], { fields: ['c', 'a', 'z'] });
    expect(specs.map((s) => s.name)).toEqual(['c', 'a', 'z']);
  });
});
