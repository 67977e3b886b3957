import { z } from 'zod';
import { baseModelSchema, idString, jobOptionsSchema, modelConfigSchema } from './fine-tune-request.ts';

/**
 * A training profile: how a license re-trains one model configuration from its stored documents, and
 * when (the policy). The dataset-builder's re-train check reads it; the API writes it.
 */
export const retrainPolicySchema = z
  .object({
    /** Re-train when at least this many documents were added or changed since the last version. */
    minNewDocuments: z.int().min(1, 'must be at least 1').max(10_000_000).default(100),
    /** ... or when the added or changed documents are at least this share of the last version's. */
    minGrowthPercent: z.number().gt(0, 'must be greater than 0').max(1_000).optional(),
    /** Never two versions closer together than this. */
    minIntervalHours: z
      .number()
      .min(0, 'must be at least 0')
      .max(24 * 366)
      .default(24),
    /** Credits the profile's versions may be estimated at per calendar month (UTC); none: no budget. */
    monthlyBudgetCredits: z.int().min(0, 'must be at least 0').optional(),
    /** What happens to the alias when a version is trained: the evaluation decides, or a person does. */
    promotion: z.enum(['if-better', 'if-not-worse', 'manual']).default('if-not-worse'),
  })
  .strict();
export type RetrainPolicy = z.output<typeof retrainPolicySchema>;

export const trainingProfileSchema = z
  .object({
    name: idString('name', 64),
    /** The document store's configuration the versions are built from. */
    configuration: idString('configuration', 64),
    modelConfig: modelConfigSchema,
    dump: z.enum(['all', 'mapped']).default('mapped'),
    testPercent: z
      .number()
      .min(1, 'must be between 1 and 50')
      .max(50, 'must be between 1 and 50')
      .default(20),
    baseModel: baseModelSchema,
    /** Provider profile to train with (when several are configured); the deployment's default otherwise. */
    provider: idString('provider', 32).optional(),
    /** The alias a promoted version serves under. */
    alias: idString('alias', 64).optional(),
    job: jobOptionsSchema.prefault({}),
    policy: retrainPolicySchema.default({
      minNewDocuments: 100,
      minIntervalHours: 24,
      promotion: 'if-not-worse',
    }),
    enabled: z.boolean().default(true),
  })
  .strict();
export type TrainingProfileInput = z.input<typeof trainingProfileSchema>;
export type TrainingProfileSettings = z.output<typeof trainingProfileSchema>;
