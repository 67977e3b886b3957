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

export const documentSchema = z.object({
  id: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  /** The document's OCR text. */
  text: z.string(),
  /** The validated fields: the answer the model should learn to give. */
  fields: z.record(z.string(), z.json()),
});
export type Document = z.infer<typeof documentSchema>;

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

export const fineTuneRequestSchema = z
  .object({
    /** The upstream app's idempotency key: the same id with the same content is the same request. */
    requestId: idString('requestId'),
    licenseId: idString('licenseId', 64),
    documents: z
      .array(documentSchema)
      .min(MIN_DOCUMENTS, `must contain at least ${MIN_DOCUMENTS} documents`)
      .max(MAX_DOCUMENTS, `must contain at most ${MAX_DOCUMENTS} documents`),
    modelConfig: modelConfigSchema,
    dump: z.enum(['all', 'mapped']).default('mapped'),
    testPercent: z.number().min(0, 'must be between 0 and 50').max(50, 'must be between 0 and 50').default(0),
    baseModel: baseModelSchema,
    /** The provider to train at; when omitted, the license's, else the model's (catalogue), else the deployment default. */
    provider: z.enum(['openai', 'azure', 'together']).optional(),
    job: jobOptionsSchema.default({ description: '', notifyEmails: '', hyperparameters: 'auto' }),
    autoTrain: z.boolean().default(true),
  })
  .strict();

/** What upstream apps send (defaults optional). */
export type FineTuneRequestInput = z.input<typeof fineTuneRequestSchema>;
/** What workers read (defaults applied). */
export type FineTuneRequest = z.output<typeof fineTuneRequestSchema>;
