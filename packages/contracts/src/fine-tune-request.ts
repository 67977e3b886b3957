import { z } from 'zod';
import { notifyEmailsSchema } from './emails.ts';

/** Ids that end up in queue job ids and file names: no colons, no spaces. */
export const idString = (what: string, max = 128) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    .regex(/^[A-Za-z0-9._-]+$/, `${what} may only contain letters, digits, '.', '_' and '-'`);

/**
 * Base model names as the provider spells them (`gpt-4o-mini-2024-07-18`, `gpt-3.5-turbo-0125`, and
 * Together's `<organization>/<model>` such as `meta-llama/Meta-Llama-3.1-8B-Instruct-Reference`).
 * Only the format is checked here; whether the model is known and fine-tunable is the catalogue's call.
 */
export const baseModelSchema = z
  .string()
  .regex(
    /^(?:[A-Za-z0-9][A-Za-z0-9_.-]*\/)?[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/,
    'must be a model name such as "gpt-4o-mini-2024-07-18" or "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" (letters, digits, ".", "_" and "-", at most one "/")',
  )
  .max(128, 'must be at most 128 characters');

export const MIN_DOCUMENTS = 10;
export const MAX_DOCUMENTS = 100_000;

/**
 * How deeply a field value may nest (`{"lines": [{"total": 1}]}` is 3 levels). Extracted fields stay
 * far below it; the bound keeps the recursive JSON check away from the stack's edge (5,000 levels
 * overflowed it and answered 500).
 */
export const MAX_FIELD_DEPTH = 32;

/**
 * True when `value` nests objects/arrays deeper than `limit`; walked level by level without recursion,
 * holding only containers (a cycle, possible in-process, only ever deepens, so it ends too).
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  let level: object[] = value !== null && typeof value === 'object' ? [value] : [];
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > limit) return true;
    const next: object[] = [];
    for (const container of level) {
      for (const child of Array.isArray(container) ? container : Object.values(container)) {
        if (child !== null && typeof child === 'object') next.push(child);
      }
    }
    level = next;
  }
  return false;
}

/** The validated fields: depth checked first (iteratively), then each value must be JSON. */
const fieldsSchema = z
  .record(z.string(), z.unknown())
  .superRefine((fields, ctx) => {
    for (const [key, value] of Object.entries(fields)) {
      if (nestsDeeperThan(value, MAX_FIELD_DEPTH)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `must not nest deeper than ${MAX_FIELD_DEPTH} levels of objects and arrays`,
        });
      }
    }
  })
  .pipe(z.record(z.string(), z.json()));

export const documentSchema = z.strictObject({
  id: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  /** The document's OCR text. */
  text: z.string(),
  /** The validated fields: the answer the model should learn to give. */
  fields: fieldsSchema,
});
export type Document = z.infer<typeof documentSchema>;

/**
 * A request's documents taken from the document store (`POST /v1/documents`): the configuration's live
 * documents when the dataset is built. Its testing split is per document id (seeded by the license and
 * configuration), so each later build keeps the earlier testing documents in testing.
 */
export const documentStoreSourceSchema = z
  .object({
    configuration: idString('configuration', 64),
    /** The training profile and version this build is (shown in the grid; the split does not use it). */
    profile: z
      .object({ name: idString('profile name', 64), version: z.int().min(1) })
      .strict()
      .optional(),
  })
  .strict();
export type DocumentStoreSource = z.infer<typeof documentStoreSourceSchema>;

export const modelConfigSchema = z.strictObject({
  systemPrompt: z.string().min(1, 'must not be empty'),
  /** Must contain `{{text}}`; `{{documentId}}` is also filled. */
  userPromptTemplate: z.string().min(1, 'must not be empty'),
  /** Fields the model configuration maps from the model's response. */
  mappedFields: z.array(z.string().min(1)).default([]),
});
export type ModelConfig = z.infer<typeof modelConfigSchema>;

const autoOr = <T extends z.ZodType>(schema: T) => z.union([z.literal('auto'), schema]);

export const hyperparametersSchema = z.union([
  z.literal('auto'),
  z
    .object({
      n_epochs: autoOr(z.int().min(1, 'must be at least 1').max(50, 'must be at most 50')).optional(),
      batch_size: autoOr(z.int().min(1, 'must be at least 1').max(256, 'must be at most 256')).optional(),
      learning_rate_multiplier: autoOr(z.number().gt(0, 'must be greater than 0')).optional(),
    })
    .strict(),
]);
export type Hyperparameters = z.infer<typeof hyperparametersSchema>;

/**
 * Epochs the provider will train for: explicit `n_epochs`, or OpenAI's `auto` rule (target 3 epochs,
 * raised so small files see at least 100 examples, lowered so large files see at most 25,000).
 */
export function resolveEpochs(nExamples: number, hyperparameters?: Hyperparameters | null): number {
  if (hyperparameters && hyperparameters !== 'auto') {
    const n = hyperparameters.n_epochs;
    if (typeof n === 'number') return n;
  }
  const MIN_TARGET_EXAMPLES = 100;
  const MAX_TARGET_EXAMPLES = 25_000;
  const TARGET_EPOCHS = 3;
  if (nExamples <= 0) return TARGET_EPOCHS;
  if (nExamples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) {
    return Math.min(25, Math.ceil(MIN_TARGET_EXAMPLES / nExamples));
  }
  if (nExamples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) {
    return Math.max(1, Math.floor(MAX_TARGET_EXAMPLES / nExamples));
  }
  return TARGET_EPOCHS;
}

/** Strict like the request around it: a typo such as `n_epoch` is an error, never a silent default. */
/**
 * A model alias (issue 21.1): a license's stable name for a use, such as `invoices`. Lowercase letters,
 * digits, `_` and `-`; never a `:`, `.` or `/`, so it cannot be mistaken for a provider's model name.
 */
export const ALIAS_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const aliasNameSchema = z
  .string()
  .regex(ALIAS_NAME, 'must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit');

export const jobOptionsSchema = z.strictObject({
  description: z.string().max(120, 'must be at most 120 characters').default(''),
  /** The `;`-separated list users type. */
  notifyEmails: notifyEmailsSchema.default(''),
  /** Model name suffix; defaults to the dataset's short hash. */
  suffix: z
    .string()
    .min(1, 'must not be empty')
    .max(18, 'must be at most 18 characters')
    .regex(/^[a-z0-9-]+$/, 'may only contain lower-case letters, digits and "-"')
    .optional(),
  hyperparameters: hyperparametersSchema.default('auto'),
  /** Evaluate the fine-tuned model on the testing file after training (no testing file: nothing to do). */
  evaluate: z.boolean().default(true),
  evaluation: z
    .object({
      /** At most this many testing examples are evaluated, sampled with the dataset's split seed. */
      maxExamples: z.int().min(1, 'must be at least 1').max(10_000, 'must be at most 10000').default(200),
    })
    .strict()
    .default({ maxExamples: 200 }),
  /**
   * The alias the resulting model should take: recorded on the fine-tune and pointed at its model when
   * the license activates it (activation stays the license's decision; only active models are served).
   */
  alias: aliasNameSchema.optional(),
});
export type JobOptions = z.infer<typeof jobOptionsSchema>;

/** The request's fields, before the rule that it names exactly one source of documents. */
export const fineTuneRequestFieldsSchema = z
  .object({
    /** The upstream app's idempotency key: the same id with the same content is the same request. */
    requestId: idString('requestId'),
    licenseId: idString('licenseId', 64),
    documents: z
      .array(documentSchema)
      .min(MIN_DOCUMENTS, `must contain at least ${MIN_DOCUMENTS} documents`)
      .max(MAX_DOCUMENTS, `must contain at most ${MAX_DOCUMENTS} documents`)
      .optional(),
    /** Instead of `documents`: build from the license's stored documents of one configuration. */
    documentStore: documentStoreSourceSchema.optional(),
    modelConfig: modelConfigSchema,
    dump: z.enum(['all', 'mapped']).default('mapped'),
    testPercent: z.number().min(0, 'must be between 0 and 50').max(50, 'must be between 0 and 50').default(0),
    baseModel: baseModelSchema,
    /** The provider to train at; when omitted, the license's, else the model's (catalogue), else the deployment default. */
    provider: z.enum(['openai', 'azure', 'together']).optional(),
    /**
     * The seed of the testing split, instead of the one the settings give (their hash): a migration
     * (issue 21.4) keeps its fine-tune's split, so the same documents are tested whatever the new base
     * model. A request built from the document store splits by its store's seed either way.
     */
    splitSeed: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    job: jobOptionsSchema.default({
      description: '',
      notifyEmails: '',
      hyperparameters: 'auto',
      evaluate: true,
      evaluation: { maxExamples: 200 },
    }),
    autoTrain: z.boolean().default(true),
  })
  .strict();

/** Exactly one source of documents: inline `documents`, or the `documentStore`. */
export function requireOneDocumentSource(
  request: { documents?: unknown; documentStore?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (request.documents === undefined && request.documentStore === undefined) {
    ctx.addIssue({ code: 'custom', path: ['documents'], message: 'is required (or give documentStore)' });
  } else if (request.documents !== undefined && request.documentStore !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['documentStore'], message: 'cannot be given with documents' });
  }
}

export const fineTuneRequestSchema = fineTuneRequestFieldsSchema.superRefine(requireOneDocumentSource);

/** What upstream apps send (defaults optional). */
export type FineTuneRequestInput = z.input<typeof fineTuneRequestSchema>;
/** What workers read (defaults applied). */
export type FineTuneRequest = z.output<typeof fineTuneRequestSchema>;
