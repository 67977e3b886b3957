// Per field: which comparison applies (its type) and how ambiguous notations are read, decided once per
// evaluation from the expected values of the testing file. The model configuration lists field names
// but no types, so the values' shapes decide, unless the caller declares a type.
import { type DecimalSeparator, parseAmount } from './amounts.ts';
import { type DateOrder, dateOrderOf, parseDate } from './dates.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * - `text`: Unicode NFKC, case-folded, whitespace collapsed; numbers and booleans as their JSON text.
 * - `amount`: an exact decimal to the cent (or the expected value's finer precision); currencies, when
 *   both sides write one, must agree.
 * - `date`: the same calendar day.
 * - `boolean`: true/false (also the strings "true"/"false").
 * - `json`: objects and arrays, compared member by member, each leaf by its own shape.
 */
export type FieldType = 'text' | 'amount' | 'date' | 'boolean' | 'json';
export const FIELD_TYPES: readonly FieldType[] = ['text', 'amount', 'date', 'boolean', 'json'];

export interface FieldSpec {
  name: string;
  type: FieldType;
  /** `declared` by the caller, or `inferred` from the expected values. */
  source: 'declared' | 'inferred';
  /** Order for ambiguous numeric dates when an example's expected value does not show one. */
  dateOrder: DateOrder;
  /** Decimal separator for ambiguous amounts ("1.234") when an example's expected value does not show one. */
  decimalSeparator: DecimalSeparator | undefined;
}

export interface FieldSpecOptions {
  /** Fields to score, in this order (e.g. the configuration's mapped fields); default: every expected key. */
  fields?: readonly string[];
  /** Declared types, over the inferred ones. */
  fieldTypes?: Readonly<Record<string, FieldType>>;
  /** Date order when neither an example nor its field shows one; default `dmy`. */
  dateOrder?: DateOrder;
}

const DIGITS_ONLY = /^\s*\d+\s*$/;

/** The type one expected value's shape suggests (null says nothing). */
export function shapeOf(value: JsonValue, dateOrder: DateOrder = 'dmy'): FieldType | null {
  if (value === null) return null;
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return 'amount';
  if (typeof value === 'object') return 'json';
  if (parseDate(value, dateOrder) !== null) return 'date';
  // Digits alone ("20457", "0042") are identifiers: compared as text, so "0042" ≠ "42".
  if (!DIGITS_ONLY.test(value) && parseAmount(value) !== null) return 'amount';
  return 'text';
}

/**
 * One spec per field. A field's type is the one all its non-null expected values share: all dates →
 * date; all numbers or amount texts (not all of them bare digits) → amount; all booleans → boolean; any
 * object or array → json; anything else (including a mix, or no value but null) → text.
 */
export function inferFieldSpecs(expected: readonly JsonObject[], opts: FieldSpecOptions = {}): FieldSpec[] {
  const names = opts.fields ? [...new Set(opts.fields)] : keysInOrder(expected);
  const fallbackOrder = opts.dateOrder ?? 'dmy';
  return names.map((name) => {
    const values: JsonValue[] = [];
    for (const e of expected) {
      if (Object.hasOwn(e, name) && e[name] !== null && e[name] !== undefined)
        values.push(e[name] as JsonValue);
    }
    const declared = opts.fieldTypes?.[name];
    return {
      name,
      type: declared ?? inferType(values, fallbackOrder),
      source: declared ? 'declared' : 'inferred',
      dateOrder: agreed(values, (v) => (typeof v === 'string' ? dateOrderOf(v) : undefined)) ?? fallbackOrder,
      decimalSeparator: agreed(values, (v) =>
        typeof v === 'string' && !DIGITS_ONLY.test(v) ? parseAmount(v)?.separatorHint : undefined,
      ),
    };
  });
}

function keysInOrder(expected: readonly JsonObject[]): string[] {
  const seen = new Set<string>();
  for (const e of expected) for (const k of Object.keys(e)) seen.add(k);
  return [...seen];
}

function inferType(values: JsonValue[], order: DateOrder): FieldType {
  if (values.length === 0) return 'text';
  const shapes = new Set(values.map((v) => shapeOf(v, order)));
  if (shapes.has('json')) return 'json';
  if (shapes.size === 1) return [...shapes][0] as FieldType;
  // Amount texts beside bare digits ("1234" in a column of "1234.50"): the digits are amounts too.
  if (shapes.size === 2 && shapes.has('amount') && shapes.has('text')) {
    const allAmounts = values.every((v) => typeof v === 'number' || parseAmount(v as string) !== null);
    if (allAmounts) return 'amount';
  }
  return 'text';
}

/** The one answer every value that gives one agrees on; undefined when none does or two disagree. */
function agreed<T>(values: JsonValue[], of: (v: JsonValue) => T | undefined): T | undefined {
  let found: T | undefined;
  for (const v of values) {
    const x = of(v);
    if (x === undefined) continue;
    if (found !== undefined && found !== x) return undefined;
    found = x;
  }
  return found;
}
