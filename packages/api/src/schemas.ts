import {
  fineTuneRequestFieldsSchema,
  idString,
  jobOptionsSchema,
  requireOneDocumentSource,
} from '@tuneline/contracts';
import { MAX_GRANT_CREDITS } from '@tuneline/ledger';
import { z } from 'zod';
import { evaluationEstimateSchema, versionPromotionSchema } from './evaluation-views.ts';
import { DATASET_STATUSES, pageSchema } from './listing.ts';

/** Request and response schemas of the HTTP API. They validate requests and generate /openapi.json. */

/** Credits and token counts leave as decimal strings: bigint-safe, never a float. */
const credits = z
  .string()
  .regex(/^-?\d+$/)
  .describe('integer credits as a decimal string (1 credit = USD 0.001)');
const nullableCount = z.string().regex(/^\d+$/).nullable();

export const idParams = z.object({ id: z.uuid('must be a UUID') });
export const licenseParams = z.object({ id: idString('license id', 64) });

export const apiFineTuneRequestSchema = fineTuneRequestFieldsSchema
  .extend({ licenseId: idString('licenseId', 64).optional().describe("defaults to the caller's license") })
  .superRefine(requireOneDocumentSource)
  .meta({ id: 'FineTuneRequest' });

export const acceptedSchema = z
  .object({ jobId: z.string(), correlationId: z.string(), duplicate: z.boolean() })
  .meta({ id: 'Accepted' });

/** A row's open dead letter: its job kept failing after the recovery cap (see /v1/dead-letters). */
export const deadLetterSummarySchema = z
  .object({
    id: z.uuid(),
    queue: z.string(),
    reason: z.string().nullable(),
    recoveries: z.int(),
    deadLetteredAt: z.string().nullable(),
  })
  .nullable()
  .meta({ id: 'DeadLetterSummary' });

/** A base model's dates at one provider from the catalogue (issue 21.2): UTC days, null when none is known. */
export const modelLifecycleSchema = z
  .object({
    provider: z
      .string()
      .nullable()
      .describe("the provider these dates are for (the row's, else the model's own); null: unknown model"),
    trainingClosesAt: z.string().nullable().describe('from this day on, no new fine-tuning jobs'),
    shutdownAt: z
      .string()
      .nullable()
      .describe('from this day on, the model and its fine-tunes serve nothing'),
    successor: z.string().nullable(),
    source: z.string().nullable(),
  })
  .meta({ id: 'ModelLifecycle' });

export const datasetSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(DATASET_STATUSES),
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
    evaluationEstimate: evaluationEstimateSchema,
    provider: z.string().nullable().describe('the provider that trains the base model (catalogue)'),
    tokenCount: z
      .enum(['exact', 'estimate'])
      .describe(
        "'estimate' when the base model's tokenizer is approximated; billing uses the provider's figure",
      ),
    lifecycle: modelLifecycleSchema,
    trainFileId: z.string().nullable(),
    testFileId: z.string().nullable(),
    autoTrain: z.boolean(),
    warnings: z.array(z.unknown()),
    errors: z.array(z.unknown()),
    correlationId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deadLetter: deadLetterSummarySchema,
  })
  .meta({ id: 'Dataset' });

export const datasetListSchema = pageSchema(datasetSchema, 'DatasetList');

export const createFineTuneBodySchema = jobOptionsSchema
  .extend({
    idempotencyKey: idString('idempotencyKey')
      .optional()
      .describe('the same key for the same dataset returns the same fine-tune instead of a second one'),
  })
  .meta({ id: 'CreateFineTune' });

/** A deployment of the model at its provider (Azure: it serves nothing until deployed; issue 20.1). */
export const deploymentSchema = z
  .object({
    name: z.string().describe("the deployment's name at the provider (what the gateway calls)"),
    state: z
      .enum(['deploying', 'active', 'deleting', 'deleted', 'failed'])
      .describe('deploying → active; deleting → deleted on deactivation; failed, or deleted by the provider'),
    reason: z
      .string()
      .nullable()
      .describe('why it ended: the provider could not deploy it, deactivated, or deleted by Azure when idle'),
    creditsPerHour: credits.describe('hosting fee per started hour while active, fixed at activation'),
    hoursCharged: z.int().describe('started hosting hours charged so far (ledger kind `hosting`)'),
    createdAt: z.string(),
    activeAt: z.string().nullable().describe('when it began serving: hosting hours count from here'),
    endedAt: z.string().nullable().describe('when it stopped existing: hosting hours end here'),
  })
  .meta({ id: 'Deployment' });

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
    cancellable: z
      .boolean()
      .describe('not finished and no cancellation asked yet: POST /v1/fine-tunes/{id}/cancel applies'),
    available: z.boolean(),
    active: z.boolean(),
    activation: z
      .enum(['inactive', 'deploying', 'active', 'deactivating'])
      .describe(
        'whether the model serves: a model that must be deployed first (Azure) goes deploying → active on activation, deactivating → inactive on deactivation',
      ),
    deployment: deploymentSchema
      .nullable()
      .describe('its latest deployment at the provider (live, or the last that ended); null: none'),
    hostingCreditsPerHour: credits
      .nullable()
      .describe(
        'hosting fee per started hour while deployed (catalogue); null: the provider serves it without a deployment',
      ),
    correlationId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
    settledAt: z.string().nullable(),
    deadLetter: deadLetterSummarySchema,
    alias: z.string().nullable().describe('the alias the request asked this model to take on activation'),
    lifecycle: modelLifecycleSchema,
  })
  .meta({ id: 'FineTune' });

export const fineTuneListSchema = pageSchema(fineTuneSchema, 'FineTuneList');

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
      z.object({
        model: z.string(),
        fineTuneId: z.uuid(),
        baseModel: z.string(),
        suffix: z.string(),
        aliases: z.array(z.string()),
        lifecycle: modelLifecycleSchema,
      }),
    ),
  })
  .meta({ id: 'ActiveModels' });

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
    kind: z.enum(['grant', 'reservation', 'charge', 'overage', 'release', 'evaluation', 'hosting']),
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

export const modelUsageQuerySchema = z.object({
  days: z.coerce
    .number()
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(366, 'must be at most 366')
    .optional(),
});

const modelUsageTotals = {
  model: z.string(),
  fineTuneId: z.string(),
  calls: z.int(),
  promptTokens: credits,
  completionTokens: credits,
  credits,
};

export const modelUsageSchema = z
  .object({
    licenseId: z.string(),
    /** First and last day covered, `YYYY-MM-DD` (UTC). */
    from: z.string(),
    to: z.string(),
    days: z.array(z.object({ day: z.string(), ...modelUsageTotals })),
    models: z.array(z.object(modelUsageTotals)),
  })
  .meta({ id: 'ModelUsage' });

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
    lifecycle: modelLifecycleSchema,
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
  .strictObject({
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

const GRANT_RANGE = `must be a whole number of credits from 1 to ${MAX_GRANT_CREDITS}`;

/** A grant's amount, a JSON number or a decimal string, checked against the range before BigInt sees it. */
const grantAmount = z
  .union([z.number(), z.string()], GRANT_RANGE)
  .refine(
    (v) =>
      typeof v === 'number'
        ? Number.isSafeInteger(v) && v >= 1 && BigInt(v) <= MAX_GRANT_CREDITS
        : /^[1-9]\d{0,18}$/.test(v) && BigInt(v) <= MAX_GRANT_CREDITS,
    GRANT_RANGE,
  )
  .describe(`integer credits, 1 to ${MAX_GRANT_CREDITS} (a number, or a decimal string)`);

export const grantSchema = z
  .strictObject({
    grantId: idString('grantId').describe('idempotency key: the same grant twice credits once'),
    amount: grantAmount,
    memo: z.string().max(500).optional(),
  })
  .meta({ id: 'Grant' });

// ---------------------------------------------------------------------------------------------------
// The document store

export const documentKeyParams = z.object({
  configuration: idString('configuration', 64),
  documentId: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
});

export const documentBatchResultSchema = z
  .object({
    counts: z.object({ created: z.int(), revised: z.int(), unchanged: z.int(), invalid: z.int() }),
    results: z.array(
      z.object({
        index: z.int(),
        configuration: z.string().optional(),
        id: z.string().optional(),
        status: z.enum(['created', 'revised', 'unchanged', 'invalid']),
        revision: z.int().optional(),
        errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
      }),
    ),
  })
  .meta({ id: 'DocumentBatchResult' });

export const documentDeletedSchema = z
  .object({ configuration: z.string(), id: z.string(), alreadyDeleted: z.boolean() })
  .meta({ id: 'DocumentDeleted' });

export const documentStoreSummarySchema = z
  .object({
    configurations: z.array(
      z.object({
        configuration: z.string(),
        documents: z.int(),
        deleted: z.int(),
        lastChangeSeq: z.string(),
        lastChangedAt: z.string(),
      }),
    ),
  })
  .meta({ id: 'DocumentStoreSummary' });

// ---------------------------------------------------------------------------------------------------
// Training profiles

export const profileNameParams = z.object({ name: idString('name', 64) });

export const trainingProfileViewSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    settings: z.unknown().describe('the profile as saved, defaults applied'),
    enabled: z.boolean(),
    lastDecision: z
      .object({
        action: z.enum(['train', 'wait', 'refuse']),
        reason: z.string().nullable(),
        at: z.string().nullable(),
      })
      .nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'TrainingProfile' });

export const trainingProfileListSchema = z
  .object({ profiles: z.array(trainingProfileViewSchema) })
  .meta({ id: 'TrainingProfileList' });

export const profileVersionParams = profileNameParams.extend({
  version: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1'),
});

export const profileVersionSchema = z
  .object({
    version: z.int(),
    requestId: z.string(),
    trigger: z.enum(['policy', 'manual']),
    documents: z.int(),
    added: z.int(),
    removed: z.int(),
    estimatedCredits: z.string(),
    datasetId: z.uuid().nullable(),
    datasetStatus: z.string().nullable(),
    fineTuneId: z.uuid().nullable().describe("the version's fine-tune (the decided one, else the newest)"),
    model: z.string().nullable(),
    serving: z.boolean().describe("the profile's alias serves this version's model now"),
    promotion: versionPromotionSchema.nullable().describe('null until decided'),
    createdAt: z.string(),
  })
  .meta({ id: 'TrainingProfileVersion' });

export const trainingProfileDetailSchema = trainingProfileViewSchema
  .extend({ versions: z.array(profileVersionSchema) })
  .meta({ id: 'TrainingProfileDetail' });

export const promoteVersionSchema = z
  .object({
    version: profileVersionSchema,
    changed: z.boolean().describe('false when the alias already served it and it was already promoted'),
    alias: z
      .object({ name: z.string(), fineTuneId: z.uuid(), model: z.string().nullable() })
      .nullable()
      .describe("the profile's alias after the call (null: the profile names none)"),
  })
  .meta({ id: 'PromotedVersion' });
