import { readFileSync } from 'node:fs';
import { formatZodError } from '@tuneline/contracts';
import { z } from 'zod';

/**
 * The base model catalogue: what Tuneline knows about each provider base model. Kept as data so ops can
 * override it (env `MODEL_CATALOGUE_FILE`: a JSON object `{ "<model>": {...} }` merged over these
 * defaults, entry by entry and field by field).
 *
 * Credits: 1 credit = USD 0.001, so `creditsPerMillionTrainingTokens` is the provider's training price per
 * 1M tokens × 1000 (gpt-4o-mini: $3.00 → 3000). Integers only; money never goes through floats.
 */

export const encodingSchema = z.enum(['o200k_base', 'cl100k_base']);
export type Encoding = z.infer<typeof encodingSchema>;

/** Non-negative integer credits, given in JSON as a number or a decimal string (bigint-safe). */
const creditsSchema = z
  .union([
    z.int().min(0, 'must be a non-negative integer'),
    z.string().regex(/^\d+$/, 'must be a non-negative integer'),
    z.bigint().min(0n, 'must be a non-negative integer'),
  ])
  .transform((v) => BigInt(v));

export const baseModelEntrySchema = z
  .object({
    encoding: encodingSchema,
    /** Tokens one training example may hold (longer examples are truncated by the provider). */
    maxTokensPerExample: z.int().min(1, 'must be at least 1'),
    creditsPerMillionTrainingTokens: creditsSchema,
    /** ISO date after which the provider takes no new fine-tuning jobs on this model. */
    shutdownDate: z.iso.date('must be an ISO date (YYYY-MM-DD)').optional(),
    fineTunable: z.boolean(),
  })
  .strict();

export type BaseModelEntry = z.output<typeof baseModelEntrySchema>;
export interface BaseModel extends BaseModelEntry {
  name: string;
}
export type Catalogue = Readonly<Record<string, BaseModel>>;

type EntryInput = z.input<typeof baseModelEntrySchema>;

const defaults: Record<string, EntryInput> = {
  'gpt-4o-mini-2024-07-18': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 3_000,
    fineTunable: true,
  },
  'gpt-4o-2024-08-06': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: true,
  },
  // Listed so requests naming it get "not fine-tunable" rather than "unknown".
  'gpt-4o-2024-05-13': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: false,
  },
  'gpt-4.1-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 25_000,
    fineTunable: true,
  },
  'gpt-4.1-mini-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 5_000,
    fineTunable: true,
  },
  'gpt-4.1-nano-2025-04-14': {
    encoding: 'o200k_base',
    maxTokensPerExample: 65_536,
    creditsPerMillionTrainingTokens: 1_500,
    fineTunable: true,
  },
  'gpt-3.5-turbo-0125': {
    encoding: 'cl100k_base',
    maxTokensPerExample: 16_385,
    creditsPerMillionTrainingTokens: 8_000,
    fineTunable: true,
  },
};

const overrideFileSchema = z.record(z.string().min(1), baseModelEntrySchema.partial());

function build(entries: Record<string, EntryInput>, source: string): Catalogue {
  const out: Record<string, BaseModel> = {};
  for (const [name, entry] of Object.entries(entries)) {
    const parsed = baseModelEntrySchema.safeParse(entry);
    if (!parsed.success)
      throw new Error(`model catalogue (${source}) entry "${name}": ${formatZodError(parsed.error)}`);
    out[name] = Object.freeze({ name, ...parsed.data });
  }
  return Object.freeze(out);
}

/** The built-in catalogue (no overrides). */
export const defaultCatalogue: Catalogue = build(defaults, 'defaults');

/**
 * The catalogue in effect: the defaults, with `MODEL_CATALOGUE_FILE` (when set) merged over them. A new
 * model in the file must give every field; a known one may override only some.
 */
export function loadCatalogue(env: Record<string, string | undefined> = process.env): Catalogue {
  const file = env.MODEL_CATALOGUE_FILE;
  if (!file) return defaultCatalogue;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`MODEL_CATALOGUE_FILE ${file}: ${(err as Error).message}`);
  }
  const parsed = overrideFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`MODEL_CATALOGUE_FILE ${file}: ${formatZodError(parsed.error)}`);
  const merged: Record<string, EntryInput> = { ...defaults };
  for (const [name, override] of Object.entries(parsed.data)) {
    const clean = Object.fromEntries(Object.entries(override).filter(([, v]) => v !== undefined));
    merged[name] = { ...(merged[name] ?? {}), ...clean } as EntryInput;
  }
  return build(merged, file);
}

export function findBaseModel(name: string, catalogue: Catalogue = defaultCatalogue): BaseModel | undefined {
  return Object.hasOwn(catalogue, name) ? catalogue[name] : undefined;
}

/** Credits for `tokens` training tokens at `creditsPerMillion`, rounded up to whole credits. */
export function trainingCredits(tokens: bigint, creditsPerMillion: bigint): bigint {
  if (tokens < 0n || creditsPerMillion < 0n) throw new RangeError('tokens and price must be non-negative');
  const product = tokens * creditsPerMillion;
  return (product + 999_999n) / 1_000_000n;
}

/** Epochs the provider will train for (in contracts, beside the hyperparameters: the ledger uses it too). */
export { resolveEpochs } from '@tuneline/contracts';
