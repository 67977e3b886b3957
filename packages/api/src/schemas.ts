import { fineTuneRequestSchema, idString, jobOptionsSchema } from '@tuneline/contracts';
import { z } from 'zod';

/** Request and response schemas of the HTTP API. They validate requests and generate /openapi.json. */

/** Credits and token counts leave as decimal strings: bigint-safe, never a float. */
const credits = z
  .string()
  .regex(/^-?\d+$/)
  .describe('integer credits as a decimal string (1 credit = USD 0.001)');
const nullableCount = z.string().regex(/^\d+$/).nullable();

export const idParams = z.object({ id: z.uuid('must be a UUID') });
export const licenseParams = z.object({ id: idString('license id', 64) });

export const apiFineTuneRequestSchema = fineTuneRequestSchema
  .extend({ licenseId: idString('licenseId', 64).optional().describe("defaults to the caller's license") })
  .meta({ id: 'FineTuneRequest' });

export const acceptedSchema = z
  .object({ jobId: z.string(), correlationId: z.string(), duplicate: z.boolean() })
  .meta({ id: 'Accepted' });

export const datasetSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(['building', 'ready', 'invalid', 'uploading', 'uploaded', 'upload_failed']),
    baseModel: z.string(),
    dump: z.enum(['all', 'mapped']),
    testPercent: z.number(),
    contentHash: z.string().nullable(),
    shortHash: z.string().nullable(),
    trainExamples: z.int(),
    testExamples: z.int(),
    trainTokens: z.string(),
    testTokens: z.string(),
    epochs: z.int().nullable(),
    estimatedBilledTokens: nullableCount,
    estimatedCredits: nullableCount,
    provider: z.string().nullable().describe('the provider that trains the base model (catalogue)'),
    tokenCount: z
      .enum(['exact', 'estimate'])
      .describe(
        "'estimate' when the base model's tokenizer is approximated; billing uses the provider's figure",
      ),
    trainFileId: z.string().nullable(),
    testFileId: z.string().nullable(),
    autoTrain: z.boolean(),
    warnings: z.array(z.unknown()),
    errors: z.array(z.unknown()),
    correlationId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Dataset' });

export const datasetListSchema = z.object({ data: z.array(datasetSchema) }).meta({ id: 'DatasetList' });

export const createFineTuneBodySchema = jobOptionsSchema
  .extend({
    idempotencyKey: idString('idempotencyKey')
      .optional()
      .describe('the same key for the same dataset returns the same fine-tune instead of a second one'),
  })
  .meta({ id: 'CreateFineTune' });

export const fineTuneSchema = z
  .object({
    id: z.uuid(),
    datasetId: z.uuid(),
    status: z.string(),
    baseModel: z.string(),
    provider: z.string().nullable().describe('the provider that trains it; null: the deployment default'),
    discarded: z.boolean().describe('discarded by the license: model deleted at the provider, row kept'),
    description: z.string(),
    notifyEmails: z.array(z.string()),
    suffix: z.string(),
    hyperparameters: z.unknown(),
    providerJobId: z.string().nullable(),
    model: z.string().nullable().describe('the fine-tuned model name'),
    trainedTokens: nullableCount,
    creditsPerMillionTokens: z.string(),
    creditsReserved: nullableCount,
    creditsCharged: nullableCount,
    errorCode: z.string().nullable(),
    errorMessage: z.string().nullable(),
    cancelRequested: z.boolean(),
    available: z.boolean(),
    active: z.boolean(),
    correlationId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
    settledAt: z.string().nullable(),
  })
  .meta({ id: 'FineTune' });

export const fineTuneListSchema = z.object({ data: z.array(fineTuneSchema) }).meta({ id: 'FineTuneList' });

export const fineTuneDetailSchema = fineTuneSchema
  .extend({
    events: z.array(
      z.object({
        id: z.string(),
        createdAt: z.string(),
        level: z.string(),
        message: z.string(),
        type: z.string().nullable(),
      }),
    ),
    checkpoints: z.array(
      z.object({
        id: z.string(),
        step: z.int(),
        model: z.string(),
        metrics: z.record(z.string(), z.unknown()),
        createdAt: z.string(),
      }),
    ),
  })
  .meta({ id: 'FineTuneDetail' });

export const activeModelsSchema = z
  .object({
    data: z.array(
      z.object({ model: z.string(), fineTuneId: z.uuid(), baseModel: z.string(), suffix: z.string() }),
    ),
  })
  .meta({ id: 'ActiveModels' });

export const chatCompletionRequestSchema = z
  .looseObject({
    model: z.string().min(1, 'must not be empty'),
    messages: z
      .array(z.looseObject({ role: z.string().min(1, 'must not be empty') }))
      .min(1, 'must contain at least one message'),
    stream: z.literal(false, 'streaming is not supported').optional(),
  })
  .meta({ id: 'ChatCompletionRequest' });

export const chatCompletionSchema = z
  .looseObject({
    id: z.string(),
    object: z.literal('chat.completion'),
    model: z.string(),
    choices: z.array(z.unknown()),
    usage: z.looseObject({ prompt_tokens: z.int(), completion_tokens: z.int(), total_tokens: z.int() }),
  })
  .meta({ id: 'ChatCompletion' });

export const balanceSchema = z
  .object({
    licenseId: z.string(),
    posted: credits,
    pending: credits,
    available: credits,
    overageBlocked: z.boolean(),
  })
  .meta({ id: 'Balance' });

export const usageEntrySchema = z
  .object({
    transferId: z.string(),
    at: z.string(),
    kind: z.enum(['grant', 'reservation', 'charge', 'overage', 'release']),
    fineTuneId: z.string().nullable(),
    model: z.string().nullable(),
    tokens: nullableCount,
    memo: z.string().nullable(),
    amount: credits,
    posted: credits,
    available: credits,
  })
  .meta({ id: 'UsageEntry' });

export const usageLogSchema = z
  .object({ licenseId: z.string(), data: z.array(usageEntrySchema) })
  .meta({ id: 'UsageLog' });

export const usageQuerySchema = z.object({ format: z.enum(['json', 'csv']).optional() });

export const estimateQuerySchema = z.object({
  model: z.string().min(1, 'must name a base model'),
  tokens: z.coerce.bigint('must be an integer token count').min(0n, 'must not be negative'),
  epochs: z.coerce
    .number()
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(50, 'must be at most 50')
    .optional(),
  examples: z.coerce.number().int('must be an integer').min(1, 'must be at least 1').optional(),
  provider: z
    .enum(['openai', 'azure', 'together'])
    .optional()
    .describe("the provider's price (default: the model's own provider)"),
});

export const estimateSchema = z
  .object({
    model: z.string(),
    tokens: z.string(),
    epochs: z.int(),
    billedTokens: z.string(),
    creditsPerMillionTrainingTokens: z.string(),
    credits,
    provider: z.string().describe('the provider that trains this model'),
    tokenCount: z
      .enum(['exact', 'estimate'])
      .describe(
        "'estimate' when the model's tokenizer is approximated (open models); billing uses the provider's figure",
      ),
    inference: z.object({ inputCreditsPerMillion: z.string(), outputCreditsPerMillion: z.string() }),
  })
  .meta({ id: 'PricingEstimate' });

const providerName = z.enum(['openai', 'azure', 'together']);

export const licenseSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    provider: providerName.nullable().describe("the license's provider; null: the deployment default"),
    createdAt: z.string(),
  })
  .meta({ id: 'License' });

export const createLicenseSchema = z
  .object({
    id: idString('id', 64).optional().describe('generated when omitted'),
    name: z.string().min(1, 'must not be empty').max(200),
    provider: providerName
      .optional()
      .describe('the provider its fine-tunes train at (default: the deployment default)'),
  })
  .meta({ id: 'CreateLicense' });

export const licenseProviderSchema = z
  .object({ provider: providerName.nullable().describe('null: back to the deployment default') })
  .meta({ id: 'LicenseProvider' });

export const createdKeySchema = z
  .object({
    id: z.uuid(),
    licenseId: z.string(),
    key: z.string().describe('shown once; only its hash is stored'),
    keyPrefix: z.string(),
  })
  .meta({ id: 'CreatedKey' });

export const grantSchema = z
  .object({
    grantId: idString('grantId').describe('idempotency key: the same grant twice credits once'),
    amount: z.union([
      z.int().positive('must be a positive integer'),
      z.string().regex(/^[1-9]\d*$/, 'must be a positive integer'),
    ]),
    memo: z.string().max(500).optional(),
  })
  .meta({ id: 'Grant' });
