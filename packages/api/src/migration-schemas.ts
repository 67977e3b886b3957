import { baseModelSchema, hyperparametersSchema } from '@tuneline/contracts';
import { isTerminalStatus, type MigrationRecord } from '@tuneline/db';
import { MIGRATION_RULES } from '@tuneline/evaluation';
import { z } from 'zod';

// One-call migration (issue 21.4): what the routes take and answer.

const targetShape = {
  provider: z.enum(['openai', 'azure', 'together']).describe('the provider to train the new model at'),
  baseModel: baseModelSchema.describe('the base model to train the new model on'),
  hyperparameters: hyperparametersSchema
    .optional()
    .describe("the new job's hyperparameters; default: the migrated fine-tune's"),
  promote: z
    .enum(MIGRATION_RULES)
    .default('if-not-worse')
    .describe(
      "when the old model's aliases move to the new one: if-not-worse (default) / if-better, judged on the " +
        'evaluation against the old model (exact McNemar); always; never',
    ),
};

export const migrateBodySchema = z.object(targetShape).strict().meta({ id: 'MigrationTarget' });

export const bulkMigrateBodySchema = z
  .object({
    fromBaseModel: baseModelSchema.describe('migrate the fine-tunes trained on this base model'),
    fromProvider: z
      .enum(['openai', 'azure', 'together'])
      .optional()
      .describe("only those at this provider (a fine-tune without one is at its model's own provider)"),
    activeOnly: z.boolean().default(false).describe('only the models offered for use (active)'),
    ...targetShape,
  })
  .strict()
  .meta({ id: 'BulkMigration' });

export const adminBulkMigrateBodySchema = bulkMigrateBodySchema
  .extend({
    licenseId: z.string().min(1).max(64).optional().describe('one license; default: every license'),
  })
  .meta({ id: 'AdminBulkMigration' });

const fineTuneRef = z.object({
  fineTuneId: z.uuid(),
  model: z.string().nullable(),
  baseModel: z.string(),
  provider: z.string().nullable(),
});

export const migrationSchema = z
  .object({
    id: z.uuid(),
    status: z
      .enum(['running', 'deploying', 'succeeded', 'failed'])
      .describe(
        'succeeded: the new model was trained and the rule decided; failed: no new model; deploying: promoted, ' +
          'the new model is being deployed (Azure) and its aliases move when it serves',
      ),
    stage: z
      .enum(['building', 'training', 'evaluating', 'deploying', 'done'])
      .describe('where a migration is: its dataset, its fine-tune, its evaluation, its deployment'),
    from: fineTuneRef.describe('the migrated fine-tune (never changed by the migration)'),
    target: z.object({ provider: z.string(), baseModel: z.string(), hyperparameters: z.unknown() }),
    promote: z.enum(MIGRATION_RULES),
    hostingCreditsPerHour: z
      .string()
      .nullable()
      .describe(
        'the new model is deployed when promoted (Azure), at this fee per started hour; null: it serves at once',
      ),
    championFineTuneId: z
      .uuid()
      .nullable()
      .describe('the model the new one is evaluated against: the old one (null: it could not answer)'),
    newFineTune: z
      .object({ fineTuneId: z.uuid(), status: z.string(), model: z.string().nullable() })
      .nullable(),
    request: z.object({
      requestId: z
        .string()
        .describe('the fine-tune request it queued (GET /v1/fine-tune-requests/{requestId})'),
      status: z.string().nullable(),
      error: z.string().nullable(),
    }),
    datasetId: z.uuid().nullable(),
    decision: z
      .enum(['promoted', 'kept'])
      .nullable()
      .describe(
        "promoted: the old model's aliases serve the new one (once deployed, on Azure); kept: they stay (see reason)",
      ),
    reason: z.string().nullable(),
    aliases: z
      .array(z.object({ name: z.string(), fromFineTuneId: z.uuid(), toFineTuneId: z.uuid() }))
      .describe('the aliases moved to the new model (history actor `migration:<id>`)'),
    evaluationPath: z.string().nullable().describe("the new model's evaluation against the old one"),
    idempotencyKey: z.string().nullable(),
    actor: z.string(),
    createdAt: z.string(),
    decidedAt: z.string().nullable(),
  })
  .meta({ id: 'Migration' });

export const migrationListSchema = z.object({ data: z.array(migrationSchema) }).meta({ id: 'MigrationList' });

const skippedSchema = z.array(z.object({ fineTuneId: z.uuid(), reason: z.string() }));

export const bulkMigrationSchema = z
  .object({
    data: z.array(migrationSchema).describe('every migration of the selection, new or earlier'),
    created: z.int().describe('how many started now'),
    estimate: z
      .string()
      .describe("the new migrations' estimated credits together: training and evaluation, before the margin"),
    skipped: skippedSchema.describe('fine-tunes that cannot be migrated to the target, and why'),
  })
  .meta({ id: 'BulkMigrationResult' });

export const adminBulkMigrationSchema = z
  .object({
    licenses: z.array(
      z.object({
        licenseId: z.string(),
        data: z.array(migrationSchema),
        created: z.int(),
        estimate: z.string(),
        skipped: skippedSchema,
        refused: z.string().nullable().describe('why none started for this license (e.g. its credits)'),
      }),
    ),
  })
  .meta({ id: 'AdminBulkMigrationResult' });

const stageOf = (m: MigrationRecord): z.infer<typeof migrationSchema>['stage'] => {
  if (m.status === 'deploying') return 'deploying';
  if (m.status !== 'running') return 'done';
  if (!m.progress.fineTuneId) return 'building';
  return m.progress.fineTuneStatus && isTerminalStatus(m.progress.fineTuneStatus) ? 'evaluating' : 'training';
};

export function migrationView(m: MigrationRecord): z.infer<typeof migrationSchema> {
  const p = m.progress;
  return {
    id: m.id,
    status: m.status,
    stage: stageOf(m),
    from: m.from,
    target: m.target,
    promote: m.promote,
    hostingCreditsPerHour: m.hostingCreditsPerHour?.toString() ?? null,
    championFineTuneId: m.championFineTuneId,
    newFineTune: p.fineTuneId
      ? { fineTuneId: p.fineTuneId, status: p.fineTuneStatus ?? 'pending', model: p.model }
      : null,
    request: { requestId: m.requestId, status: p.requestStatus, error: p.requestError },
    datasetId: p.datasetId,
    decision: m.decision,
    reason: m.reason,
    aliases: m.aliases,
    evaluationPath: p.fineTuneId ? `/v1/fine-tunes/${p.fineTuneId}/evaluation` : null,
    idempotencyKey: m.idempotencyKey,
    actor: m.actor,
    createdAt: m.createdAt.toISOString(),
    decidedAt: m.decidedAt?.toISOString() ?? null,
  };
}
