// Scoring a small fixed set of answers against a table computed by hand: outcomes per field, accuracy
// with 95% Wilson intervals, JSON validity, documents with every field right, and the exact McNemar
// verdict; and the same figures again from the rows alone (as a stage would store them).
import {
  compareModels,
  type ExampleRow,
  type FieldRow,
  mcnemarExact,
  report,
  scoreAnswers,
  summarise,
  wilsonInterval,
} from '@tuneline/evaluation';
import { describe, expect, it } from 'vitest';

const examples = [
  { id: 'e1', expected: { invoiceNumber: 'INV-1', invoiceDate: '2026-04-03', total: 1234.5 } },
  { id: 'e2', expected: '{"invoiceDate":"2026-12-25","invoiceNumber":"INV-2","total":99}' }, // as in a testing file
  { id: 'e3', expected: { invoiceNumber: 'INV-3', invoiceDate: '2026-01-05', total: 10.1 } },
  { id: 'e4', expected: { invoiceNumber: 'INV-4', invoiceDate: '2026-07-14', total: null } },
];
const answers = [
  // The candidate: notations differ from the expected values, one amount wrong.
  {
    model: 'ft',
    exampleId: 'e1',
    answer: '{"invoiceNumber":"inv-1","invoiceDate":"03.04.2026","total":"1.234,50 €"}',
  },
  {
    model: 'ft',
    exampleId: 'e2',
    answer: '{"invoiceNumber":"INV-2","invoiceDate":"25/12/2026","total":99.0}',
  },
  {
    model: 'ft',
    exampleId: 'e3',
    answer: '{"invoiceNumber":"INV-3","invoiceDate":"2026-01-05","total":10.01}',
  },
  {
    model: 'ft',
    exampleId: 'e4',
    answer: '{"invoiceNumber":"INV-4","invoiceDate":"July 14, 2026","total":null}',
  },
  // The base model: a wrong key, a month-first date read day-first, cut-off JSON, null, no date, a spurious 0.
  {
    model: 'base',
    exampleId: 'e1',
    answer: '{"invoice_number":"INV-1","invoiceDate":"04/03/2026","total":"1234.50"}',
  },
  { model: 'base', exampleId: 'e2', answer: '{"invoiceNumber":"INV-2","invoiceDate":"2026-12-25","total":' },
  { model: 'base', exampleId: 'e3', answer: '{"invoiceNumber":"INV-3","invoiceDate":null,"total":"10,10"}' },
  { model: 'base', exampleId: 'e4', answer: '{"invoiceNumber":"INV 4","invoiceDate":"soon","total":0}' },
];

// The hand-computed table (Wilson: p̂ = k/n, z = 1.96, centre (p̂ + z²/2n)/(1 + z²/n), half-width
// z/(1 + z²/n)·√(p̂(1-p̂)/n + z²/4n²); worked out separately, to 6 places).
const table = {
  ft: {
    outcomes: {
      e1: ['correct', 'correct', 'correct'],
      e2: ['correct', 'correct', 'correct'],
      e3: ['correct', 'correct', 'wrong'],
      e4: ['correct', 'correct', 'correct'],
    },
    fields: {
      invoiceNumber: [4, 4, 0.510109, 1],
      invoiceDate: [4, 4, 0.510109, 1],
      total: [3, 4, 0.300642, 0.954413],
    },
    overall: [11, 12, 0.64612, 0.985135],
    validJson: [4, 4],
    allFieldsRight: [3, 4],
  },
  base: {
    outcomes: {
      e1: ['missing', 'wrong', 'correct'],
      e2: ['invalid_json', 'invalid_json', 'invalid_json'],
      e3: ['correct', 'null', 'correct'],
      e4: ['wrong', 'unreadable', 'spurious'],
    },
    fields: {
      invoiceNumber: [1, 4, 0.045587, 0.699358],
      invoiceDate: [0, 4, 0, 0.489891],
      total: [2, 4, 0.150039, 0.849961],
    },
    overall: [3, 12, 0.088942, 0.532305],
    validJson: [3, 4],
    allFieldsRight: [0, 4],
  },
} as const;

describe('scoring a fixed set against the hand-computed table', () => {
  const rows = scoreAnswers(examples, answers, { fields: ['invoiceNumber', 'invoiceDate', 'total'] });

  it('infers the field types and gives every (example, model, field) its outcome', () => {
    expect(rows.specs.map((s) => [s.name, s.type])).toEqual([
      ['invoiceNumber', 'text'],
      ['invoiceDate', 'date'],
      ['total', 'amount'],
    ]);
    for (const model of ['ft', 'base'] as const) {
      for (const [exampleId, outcomes] of Object.entries(table[model].outcomes)) {
        const got = rows.fieldRows
          .filter((r) => r.model === model && r.exampleId === exampleId)
          .map((r) => r.outcome);
        expect(got, `${model} ${exampleId}`).toEqual(outcomes);
      }
    }
  });

  it('keeps each answer and each answered value, and names the keys that were not fields', () => {
    const e1 = rows.exampleRows.find((r) => r.model === 'base' && r.exampleId === 'e1')!;
    expect(e1).toEqual({
      exampleId: 'e1',
      model: 'base',
      answer: answers[4]!.answer,
      validJson: true,
      extraKeys: ['invoice_number'],
    });
    const rowsOf = (model: string, exampleId: string) =>
      rows.fieldRows.filter((r) => r.model === model && r.exampleId === exampleId);
    expect(rowsOf('base', 'e1')[0]).toEqual({
      exampleId: 'e1',
      model: 'base',
      field: 'invoiceNumber',
      outcome: 'missing',
      expected: 'INV-1',
    });
    expect(rowsOf('base', 'e1')[1]).toMatchObject({
      expected: '2026-04-03',
      answered: '04/03/2026',
      outcome: 'wrong',
    });
    expect(rowsOf('base', 'e2').every((r) => !('answered' in r))).toBe(true);
    expect(rowsOf('base', 'e4')[2]).toMatchObject({ expected: null, answered: 0, outcome: 'spurious' });
  });

  it('summarises per field and overall with Wilson intervals', () => {
    const summaries = summarise(rows.exampleRows, rows.fieldRows);
    expect(summaries.map((s) => s.model)).toEqual(['ft', 'base']);
    for (const s of summaries) {
      const want = table[s.model as 'ft' | 'base'];
      expect(s.examples).toBe(4);
      for (const f of s.fields) {
        const [k, n, low, high] = want.fields[f.field as keyof typeof want.fields];
        expect([f.accuracy.k, f.accuracy.n], `${s.model} ${f.field}`).toEqual([k, n]);
        expect(f.accuracy.rate).toBeCloseTo(k / n, 12);
        expect(f.accuracy.low).toBeCloseTo(low, 6);
        expect(f.accuracy.high).toBeCloseTo(high, 6);
      }
      const [k, n, low, high] = want.overall;
      expect([s.fieldAccuracy.k, s.fieldAccuracy.n]).toEqual([k, n]);
      expect(s.fieldAccuracy.low).toBeCloseTo(low, 6);
      expect(s.fieldAccuracy.high).toBeCloseTo(high, 6);
      expect([s.validJson.k, s.validJson.n]).toEqual(want.validJson);
      expect([s.allFieldsRight.k, s.allFieldsRight.n]).toEqual(want.allFieldsRight);
    }
    const base = summaries[1]!;
    expect(base.fields.find((f) => f.field === 'invoiceDate')!.outcomes).toEqual({
      correct: 0,
      wrong: 1,
      unreadable: 1,
      missing: 0,
      null: 1,
      spurious: 0,
      invalid_json: 1,
    });
  });

  it('compares the candidate with the base model: exact McNemar on the discordant pairs', () => {
    // Pairs: both right e1.total, e3.invoiceNumber (2); only ft right: 9; only base right: e3.total (1).
    // p = 2 · (C(10,0) + C(10,1)) / 2^10 = 22/1024.
    const c = compareModels(rows.fieldRows, 'ft', 'base');
    expect(c).toMatchObject({ n: 12, bothRight: 2, candidateOnly: 9, comparisonOnly: 1, bothWrong: 0 });
    expect(c.pValue).toBeCloseTo(22 / 1024, 12);
    expect(c.verdict).toBe('better');
    expect(c.line).toBe(
      'better at n = 12: ft 91.7% vs base 25.0% of fields right (9 right only for the first, 1 only for the second; exact McNemar p = 0.021)',
    );
    // Per field, four pairs are too few: 4 of 4 discordant pairs one way still gives p = 2/16.
    expect(c.fields.map((f) => [f.field, f.candidateOnly, f.comparisonOnly, f.verdict, f.delta])).toEqual([
      ['invoiceNumber', 3, 0, 'no significant difference', 0.75],
      ['invoiceDate', 4, 0, 'no significant difference', 1],
      ['total', 2, 1, 'no significant difference', 0.25],
    ]);
    const p = c.fields.map((f) => f.pValue);
    expect(p[0]).toBeCloseTo(2 / 8, 12);
    expect(p[1]).toBeCloseTo(2 / 16, 12);
    expect(p[2]).toBe(1); // 2 · (1 + 3) / 8, capped at 1
    // The other way round, the same test says "worse".
    expect(compareModels(rows.fieldRows, 'base', 'ft').verdict).toBe('worse');
  });

  it('gives the same report from rows that went through storage (JSON) and back', () => {
    const stored = JSON.parse(
      JSON.stringify({ exampleRows: rows.exampleRows, fieldRows: rows.fieldRows }),
    ) as {
      exampleRows: ExampleRow[];
      fieldRows: FieldRow[];
    };
    expect(report(stored, 'ft', ['base'])).toEqual(report(rows, 'ft', ['base']));
    // Pairs exist only where both models answered: drop one of the base model's examples.
    const partial = stored.fieldRows.filter((r) => !(r.model === 'base' && r.exampleId === 'e2'));
    expect(compareModels(partial, 'ft', 'base').n).toBe(9);
  });
});

describe('statistics', () => {
  it('Wilson intervals match published figures and stay inside [0, 1]', () => {
    const i = wilsonInterval(8, 10);
    expect(i.low).toBeCloseTo(0.490162, 6);
    expect(i.high).toBeCloseTo(0.943318, 6);
    expect(wilsonInterval(0, 10).low).toBe(0);
    expect(wilsonInterval(10, 10).high).toBe(1);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
  });

  it('exact McNemar: small cases by hand, symmetric, 1 without discordant pairs, no underflow for large n', () => {
    expect(mcnemarExact(10, 2)).toBeCloseTo((2 * (1 + 12 + 66)) / 4096, 12);
    expect(mcnemarExact(2, 10)).toBe(mcnemarExact(10, 2));
    expect(mcnemarExact(0, 0)).toBe(1);
    expect(mcnemarExact(3, 3)).toBe(1);
    expect(mcnemarExact(5, 0)).toBeCloseTo(2 / 32, 12); // not significant: at least 6 are needed
    expect(mcnemarExact(6, 0)).toBeCloseTo(2 / 64, 12);
    const large = mcnemarExact(1200, 1000);
    expect(large).toBeGreaterThan(0);
    expect(large).toBeLessThan(1e-4);
    expect(mcnemarExact(1500, 1500)).toBe(1);
  });

  it('says "no significant difference" with the number of pairs when the test cannot tell', () => {
    const rows = scoreAnswers(
      [{ id: 'x', expected: { a: 'A', b: 'B' } }],
      [
        { model: 'new', exampleId: 'x', answer: '{"a":"A","b":"C"}' },
        { model: 'old', exampleId: 'x', answer: '{"a":"D","b":"B"}' },
      ],
    );
    const c = compareModels(rows.fieldRows, 'new', 'old');
    expect(c.verdict).toBe('no significant difference');
    expect(c.line).toMatch(/^no significant difference at n = 2: /);
  });
});
