// The fine-tuned toy model: learns from its training file alone where each answer field sits in the
// document text and how the answers write it, then extracts by that from documents it never saw.
//
// Learning, per field: every place in a training document whose value equals the answer (a date or an
// amount read from the text, a token, or the rest of a line) gives candidate rules: "the value after
// these label words" (one, two or three words before it on its line) or "line N". A rule's support is
// the number of training examples it extracts correctly, its precision the share right among those it
// fires on; rules are kept in order of precision (smoothed), so a layout's exact label goes before a
// general one. Training exposure decides what is learned: a rule with support s after e epochs is
// learned with probability 1 - exp(-s·e/τ) (a seeded draw per rule), and a learned but weak rule slips
// on a document with probability (1 - that)/2 (seeded by the document). So fewer examples or epochs
// leave layouts unlearned or noisy, and more of either only adds. The testing (validation) file is never
// read: a model is built from its job's training examples, seed and epochs.
import {
  type AnalysedText,
  amountAt,
  analyse,
  anchorIndex,
  anchorKeys,
  answerAmountText,
  answerDate,
  type DateFormat,
  datesAt,
  findAnchors,
  fnv1a,
  restValue,
  type Token,
  tokenValue,
  unitFloat,
  writeDate,
} from './ocr-text.ts';

/** Exposure (support × epochs) at which a rule is learned with probability 1 - 1/e. */
export const LEARNING_SCALE = 6;
const MAX_RULES_PER_FIELD = 24;

export interface TrainingPair {
  input: string;
  answer: string;
}

type Kind =
  | { type: 'date'; format: DateFormat }
  | { type: 'amount'; as: 'number' | '.' | ',' }
  | { type: 'token' }
  | { type: 'rest' };

interface Rule {
  anchor: string;
  /** For numeric dates: which reading the rule uses. */
  reading: 'dmy' | 'mdy' | 'any';
  correct: number;
  fired: number;
  /** Learned with this probability; a learned rule slips with (1 - p) / 2. */
  p: number;
}

interface FieldModel {
  name: string;
  kind: Kind;
  rules: Rule[];
  /** What the model answers when no rule fires: null, the most frequent answer, or no key at all. */
  fallback: { value: unknown } | 'omit';
}

export interface LearnedModel {
  fields: FieldModel[];
  seed: number;
  /** Every rule's anchor, and the last label word of each: what answering looks for in a document. */
  anchors: ReadonlySet<string>;
  lastWords: ReadonlySet<string>;
}

type Target = number | string; // a day (yyyymmdd), cents, or lower-case text

function kindOf(values: unknown[]): Kind {
  const present = values.filter((v) => v !== null && v !== undefined);
  const strings = present.filter((v): v is string => typeof v === 'string');
  if (present.length > 0 && present.every((v) => typeof v === 'number'))
    return { type: 'amount', as: 'number' };
  if (strings.length === present.length && strings.length > 0) {
    const dates = strings.map(answerDate);
    if (dates.every((d) => d !== null))
      return { type: 'date', format: majority(dates.map((d) => d!.format)) };
    const amounts = strings.map(answerAmountText);
    if (amounts.every((a) => a !== null))
      return { type: 'amount', as: majority(amounts.map((a) => a!.decimal)) };
    return strings.some((s) => /\s/.test(s)) ? { type: 'rest' } : { type: 'token' };
  }
  return { type: 'rest' };
}

function majority<T>(items: T[]): T {
  const counts = new Map<T, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}

/** The answer's value in the form extraction produces, or undefined when the kind cannot hold it. */
function targetOf(kind: Kind, value: unknown): Target | undefined {
  if (kind.type === 'date') return typeof value === 'string' ? answerDate(value)?.day : undefined;
  if (kind.type === 'amount') {
    if (typeof value === 'number') return Math.round(value * 100);
    return typeof value === 'string' ? answerAmountText(value)?.cents : undefined;
  }
  return typeof value === 'string'
    ? value.toLowerCase()
    : typeof value === 'number'
      ? String(value)
      : undefined;
}

/** What the document has at a token for a kind: [value, reading] pairs. */
function valuesAt(kind: Kind, doc: AnalysedText, token: Token): Array<[Target, Rule['reading']]> {
  const line = doc.lines[token.line]!;
  switch (kind.type) {
    case 'date':
      return datesAt(line.text, token.start).map((d) => [d.day, d.reading === 'fixed' ? 'any' : d.reading]);
    case 'amount': {
      const cents = amountAt(line.text, token.start);
      return cents === null ? [] : [[cents, 'any']];
    }
    case 'token':
      return [[tokenValue(token), 'any']];
    case 'rest':
      return [[restValue(line, token), 'any']];
  }
}

/** The value a rule reads at a token (raw text for text kinds, so the answer keeps the document's case). */
function readAt(kind: Kind, rule: Rule, doc: AnalysedText, token: Token): Target | undefined {
  for (const [value, reading] of valuesAt(kind, doc, token)) {
    if (rule.reading === 'any' || reading === 'any' || reading === rule.reading) return value;
  }
  return undefined;
}

function apply(kind: Kind, rule: Rule, doc: AnalysedText, anchors: Map<string, Token[]>): Target | undefined {
  const tokens = anchors.get(rule.anchor);
  if (!tokens) return undefined;
  for (const token of tokens) {
    const value = readAt(kind, rule, doc, token);
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

const same = (a: Target, b: Target) =>
  typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b : a === b;

/** Learns a model from training pairs; null when fewer than half the answers are JSON objects. */
export function learn(pairs: readonly TrainingPair[], seed: number, epochs: number): LearnedModel | null {
  const answers: Array<Record<string, unknown> | null> = pairs.map((p) => {
    try {
      const v: unknown = JSON.parse(p.answer);
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  });
  const usable = answers.filter((a) => a !== null).length;
  if (usable === 0 || usable * 2 < pairs.length) return null;
  const docs = pairs.map((p, i) => (answers[i] ? analyse(p.input) : null));
  const indexes = docs.map((doc) => (doc ? anchorIndex(doc) : null));
  const names: string[] = [];
  for (const a of answers) for (const k of Object.keys(a ?? {})) if (!names.includes(k)) names.push(k);

  const fields = names.map((name): FieldModel => {
    const values = answers.map((a) => (a && Object.hasOwn(a, name) ? a[name] : undefined));
    const kind = kindOf(values);
    const targets = values.map((v) => (v === null || v === undefined ? undefined : targetOf(kind, v)));
    // Candidates: every anchor of every place that holds the answer.
    const candidates = new Map<string, Rule & { examples: Set<number> }>();
    docs.forEach((doc, i) => {
      const target = targets[i];
      if (!doc || target === undefined) return;
      for (const token of doc.tokens) {
        for (const [value, reading] of valuesAt(kind, doc, token)) {
          if (!same(value, target)) continue;
          for (const anchor of anchorKeys(doc, token)) {
            const key = `${anchor}\u0000${reading}`;
            let rule = candidates.get(key);
            if (!rule) {
              rule = { anchor, reading, correct: 0, fired: 0, p: 0, examples: new Set() };
              candidates.set(key, rule);
            }
            rule.examples.add(i);
          }
        }
      }
    });
    // Precision on the whole training set, for the best-supported candidates.
    const rules = [...candidates.values()]
      .sort((a, b) => b.examples.size - a.examples.size || a.anchor.localeCompare(b.anchor))
      .slice(0, MAX_RULES_PER_FIELD)
      .map((rule): Rule => {
        let correct = 0;
        let fired = 0;
        docs.forEach((doc, i) => {
          if (!doc || !answers[i]) return;
          const got = apply(kind, rule, doc, indexes[i]!);
          if (got === undefined) return;
          fired++;
          const target = targets[i];
          if (target !== undefined && same(got, target)) correct++;
        });
        const p = 1 - Math.exp((-correct * epochs) / LEARNING_SCALE);
        return { anchor: rule.anchor, reading: rule.reading, correct, fired, p };
      })
      .filter((r) => r.correct * 2 > r.fired)
      .sort((a, b) => b.correct / (b.fired + 0.25) - a.correct / (a.fired + 0.25) || b.correct - a.correct)
      // What training exposure let the model learn (a seeded draw per rule, the same for every epoch count).
      .filter((r) => unitFloat(fnv1a(`${name}\u0000${r.anchor}\u0000${r.reading}`), seed) < r.p);
    const present = values.filter((v) => v !== undefined);
    const fallback: FieldModel['fallback'] =
      present.length * 2 < values.length
        ? 'omit'
        : present.includes(null)
          ? { value: null }
          : { value: JSON.parse(majority(present.map((v) => JSON.stringify(v)))) };
    return { name, kind, rules, fallback };
  });
  const anchors = new Set(fields.flatMap((f) => f.rules.map((r) => r.anchor)));
  const lastWords = new Set(
    [...anchors]
      .filter((a) => a.startsWith('w'))
      .map((a) => a.slice(a.lastIndexOf(' ') + 1).replace(/^w1:/, '')),
  );
  return { fields, seed, anchors, lastWords };
}

function write(kind: Kind, value: Target): unknown {
  switch (kind.type) {
    case 'date':
      return writeDate(value as number, kind.format);
    case 'amount': {
      const cents = value as number;
      if (kind.as === 'number') return cents / 100;
      const text = (Math.abs(cents) / 100).toFixed(2);
      return `${cents < 0 ? '-' : ''}${kind.as === ',' ? text.replace('.', ',') : text}`;
    }
    default:
      return value;
  }
}

/** The model's answer to one document: a JSON object with the learned fields. */
export function extract(model: LearnedModel, input: string): string {
  const doc = analyse(input);
  const anchors = findAnchors(doc, model.anchors, model.lastWords);
  const inputHash = fnv1a(input);
  const out: Record<string, unknown> = {};
  model.fields.forEach((field, f) => {
    for (const rule of field.rules) {
      const value = apply(field.kind, rule, doc, anchors);
      if (value === undefined) continue;
      // A weakly learned rule sometimes slips on a document: the model falls back to its prior.
      if (unitFloat(inputHash, model.seed + f) < (1 - rule.p) / 2) break;
      out[field.name] = write(field.kind, value);
      return;
    }
    if (field.fallback !== 'omit') out[field.name] = field.fallback.value;
  });
  return JSON.stringify(out);
}
