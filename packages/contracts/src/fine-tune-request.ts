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
 * Base model names as the provider spells them (`gpt-4o-mini-2024-07-18`, `gpt-3.5-turbo-0125`).
 * Only the format is checked here; whether the model is known and fine-tunable is the catalogue's call.
 */
export const baseModelSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$/,
    'must be a model name such as "gpt-4o-mini-2024-07-18" (lower-case letters, digits, "." and "-")',
  )
  .max(64, 'must be at most 64 characters');

export const MIN_DOCUMENTS = 10;
export const MAX_DOCUMENTS = 100_000;

export const documentSchema = z.object({
  id: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  /** The document's OCR text. */
  text: z.string(),
  /** The validated fields: the answer the model should learn to give. */
  fields: z.record(z.string(), z.json()),
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

export const modelConfigSchema = z.object({
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

export const jobOptionsSchema = z.object({
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
    job: jobOptionsSchema.default({ description: '', notifyEmails: '', hyperparameters: 'auto' }),
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
