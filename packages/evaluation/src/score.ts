// Scoring one answer against one example's expected fields, into rows that can be stored as they are
// (example × model, and example × model × field) and summarised again later.
import {
  type Decimal,
  type DecimalSeparator,
  decimalOfNumber,
  type ParsedAmount,
  parseAmount,
  roundedDigits,
  sameCurrency,
} from './amounts.ts';
import { type DateOrder, dateOrderOf, parseDate } from './dates.ts';
import { type FieldSpec, type FieldType, type JsonObject, type JsonValue, shapeOf } from './fields.ts';
import { normaliseText } from './text.ts';

/**
 * What happened to one expected field in one answer. Only `correct` scores 1.
 *
 * | expected \ answer | key absent | null      | a value                       |
 * | a value           | `missing`  | `null`    | `correct`, `wrong`, `unreadable` |
 * | null              | `missing`  | `correct` | `spurious`                    |
 * | key absent        | not scored | not scored | not scored (an extra key)    |
 *
 * and `invalid_json` for every expected field when the answer is not a JSON object.
 */
export type FieldOutcome =
  | 'correct'
  | 'wrong'
  | 'unreadable'
  | 'missing'
  | 'null'
  | 'spurious'
  | 'invalid_json';
export const FIELD_OUTCOMES: readonly FieldOutcome[] = [
  'correct',
  'wrong',
  'unreadable',
  'missing',
  'null',
  'spurious',
  'invalid_json',
];

/** One answer of one model to one example. */
export interface ExampleRow {
  exampleId: string;
  model: string;
  /** The answer as the model wrote it. */
  answer: string;
  /** Whether the answer parsed as one JSON object. */
  validJson: boolean;
  /** Keys of the answer that are not scored fields (wrong names, extras). */
  extraKeys: string[];
}

/** One expected field of one example, as one model answered it. */
export interface FieldRow {
  exampleId: string;
  model: string;
  field: string;
  outcome: FieldOutcome;
  expected: JsonValue;
  /** The answer's value; absent when the answer had no such key (or was not a JSON object). */
  answered?: JsonValue;
}

export interface EvaluationExample {
  id: string;
  /** The expected fields: an object, or the testing file's assistant message (JSON text) holding one. */
  expected: JsonObject | string;
}

/** An expected value read once, so that scoring each model's answer reads only the answer. */
type Reference =
  | { type: 'text'; text: string }
  | {
      type: 'amount';
      places: number;
      digits: string;
      currency: string | undefined;
      hint: DecimalSeparator | undefined;
    }
  | { type: 'date'; day: number; order: DateOrder }
  | { type: 'boolean'; value: boolean }
  | { type: 'json'; value: JsonValue; spec: FieldSpec }
  | { type: 'null' };

interface PreparedField {
  spec: FieldSpec;
  expected: JsonValue;
  reference: Reference;
}

export interface PreparedExample {
  id: string;
  fields: PreparedField[];
  /** Names of all scored fields (for extra keys). */
  names: ReadonlySet<string>;
}

/** The testing file's assistant message as the expected object; an error naming the example otherwise. */
export function expectedObject(example: EvaluationExample): JsonObject {
  if (typeof example.expected !== 'string') return example.expected;
  let value: unknown;
  try {
    value = JSON.parse(example.expected);
  } catch (err) {
    throw new Error(`example ${example.id}: the expected answer is not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new Error(`example ${example.id}: the expected answer is not a JSON object`);
  return value;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads an example's expected values for the given field specs (fields it lacks are not scored). */
export function prepareExample(specs: readonly FieldSpec[], example: EvaluationExample): PreparedExample {
  const expected = expectedObject(example);
  const fields: PreparedField[] = [];
  for (const spec of specs) {
    if (!Object.hasOwn(expected, spec.name)) continue;
    const value = expected[spec.name] as JsonValue;
    fields.push({ spec, expected: value, reference: referenceOf(spec, spec.type, value) });
  }
  return { id: example.id, fields, names: new Set(specs.map((s) => s.name)) };
}

function referenceOf(spec: FieldSpec, type: FieldType, value: JsonValue): Reference {
  if (value === null) return { type: 'null' };
  switch (type) {
    case 'amount': {
      const hint =
        typeof value === 'string' ? (parseAmount(value)?.separatorHint ?? spec.decimalSeparator) : undefined;
      const d =
        typeof value === 'number'
          ? decimalOfNumber(value)
          : typeof value === 'string'
            ? parseAmount(value, hint)
            : null;
      if (!d) break;
      // JSON numbers are written with "."; one with a fraction says so to an ambiguous answer ("1.234").
      const ownHint = typeof value === 'number' ? (d.frac ? '.' : undefined) : hint;
      const places = Math.max(2, d.frac.length);
      const currency = (d as Partial<ParsedAmount>).currency;
      return { type: 'amount', places, digits: roundedDigits(d, places), currency, hint: ownHint };
    }
    case 'date': {
      if (typeof value !== 'string') break;
      const order = dateOrderOf(value) ?? spec.dateOrder;
      const day = parseDate(value, order);
      if (day === null) break;
      return { type: 'date', day, order };
    }
    case 'boolean':
      if (typeof value === 'boolean') return { type: 'boolean', value };
      break;
    case 'json':
      return { type: 'json', value, spec };
    case 'text':
      break;
  }
  // Not readable as the declared type (or text): compared as text.
  return { type: 'text', text: textOf(value) ?? '' };
}

function textOf(value: JsonValue): string | undefined {
  if (typeof value === 'string') return normaliseText(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** How one answered value (present, not null) compares with a non-null reference. */
function compareValue(
  ref: Exclude<Reference, { type: 'null' }>,
  answered: JsonValue,
): 'correct' | 'wrong' | 'unreadable' {
  switch (ref.type) {
    case 'text': {
      const text = textOf(answered);
      return text === undefined ? 'unreadable' : text === ref.text ? 'correct' : 'wrong';
    }
    case 'amount': {
      let d: Decimal | null = null;
      let currency: string | undefined;
      if (typeof answered === 'number') d = decimalOfNumber(answered);
      else if (typeof answered === 'string') {
        const parsed = parseAmount(answered, ref.hint);
        d = parsed;
        currency = parsed?.currency;
      }
      if (!d) return 'unreadable';
      return roundedDigits(d, ref.places) === ref.digits && sameCurrency(ref.currency, currency)
        ? 'correct'
        : 'wrong';
    }
    case 'date': {
      if (typeof answered !== 'string') return 'unreadable';
      const day = parseDate(answered, ref.order);
      return day === null ? 'unreadable' : day === ref.day ? 'correct' : 'wrong';
    }
    case 'boolean': {
      const value =
        typeof answered === 'boolean'
          ? answered
          : typeof answered === 'string' && /^\s*(true|false)\s*$/i.test(answered)
            ? answered.trim().toLowerCase() === 'true'
            : undefined;
      return value === undefined ? 'unreadable' : value === ref.value ? 'correct' : 'wrong';
    }
    case 'json':
      return sameJson(ref.value, answered, ref.spec) ? 'correct' : 'wrong';
  }
}

/** Objects and arrays member by member; each leaf compared by its own shape. */
function sameJson(expected: JsonValue, answered: JsonValue, spec: FieldSpec): boolean {
  if (expected === null || answered === null) return expected === answered;
  if (Array.isArray(expected)) {
    return (
      Array.isArray(answered) &&
      answered.length === expected.length &&
      expected.every((e, i) => sameJson(e, answered[i] as JsonValue, spec))
    );
  }
  if (typeof expected === 'object') {
    if (!isObject(answered)) return false;
    const keys = Object.keys(expected);
    if (keys.length !== Object.keys(answered).length) return false;
    return keys.every(
      (k) => Object.hasOwn(answered, k) && sameJson(expected[k] as JsonValue, answered[k] as JsonValue, spec),
    );
  }
  const leaf = referenceOf(spec, shapeOf(expected, spec.dateOrder) ?? 'text', expected);
  return leaf.type !== 'null' && compareValue(leaf, answered) === 'correct';
}

/** Parses the answer once and scores every expected field of the example. */
export function scoreAnswer(
  example: PreparedExample,
  model: string,
  answer: string,
): { example: ExampleRow; fields: FieldRow[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    parsed = undefined;
  }
  const object = isObject(parsed) ? parsed : undefined;
  const fields: FieldRow[] = [];
  for (const f of example.fields) {
    const row: FieldRow = {
      exampleId: example.id,
      model,
      field: f.spec.name,
      outcome: 'invalid_json',
      expected: f.expected,
    };
    if (object) {
      if (!Object.hasOwn(object, f.spec.name)) row.outcome = 'missing';
      else {
        const answered = object[f.spec.name] as JsonValue;
        row.answered = answered;
        if (f.reference.type === 'null') row.outcome = answered === null ? 'correct' : 'spurious';
        else if (answered === null) row.outcome = 'null';
        // The expected value written the same way: read with the same type and hints it compares equal,
        // so the common right answer skips the parsing (same outcome either way).
        else if (answered === f.expected) row.outcome = 'correct';
        else row.outcome = compareValue(f.reference, answered);
      }
    }
    fields.push(row);
  }
  const extraKeys = object ? Object.keys(object).filter((k) => !example.names.has(k)) : [];
  return {
    example: { exampleId: example.id, model, answer, validJson: object !== undefined, extraKeys },
    fields,
  };
}

/** Compares one expected value with one answered value under a field spec (undefined: key absent). */
export function compareField(
  spec: FieldSpec,
  expected: JsonValue,
  answered: JsonValue | undefined,
): FieldOutcome {
  const prepared = prepareExample([spec], { id: '', expected: { [spec.name]: expected } });
  const answer = answered === undefined ? '{}' : JSON.stringify({ [spec.name]: answered });
  return (scoreAnswer(prepared, '', answer).fields[0] as FieldRow).outcome;
}
