import { randomUUID } from 'node:crypto';
import {
  type FineTuneRequestInput,
  fineTuneRequestMessage,
  fineTuneRequestSchema,
  type Hyperparameters,
  hyperparametersSchema,
} from '@tuneline/contracts';
import {
  type BaseModel,
  estimateEvaluation,
  findBaseModel,
  hostingFeeOf,
  shutDown,
  splitSeed,
  trainingPriceAt,
} from '@tuneline/dataset';
import {
  type FineTuneRecord,
  findDataset,
  findMigrationByKey,
  findMigrationByTarget,
  findRequestById,
  getEvaluationOptions,
  insertMigration,
  inTransaction,
  type MigrationRecord,
  type MigrationRule,
  migrationRequestId,
  writeOutbox,
} from '@tuneline/db';
import { creditsForTokens, fineTuneEstimate } from '@tuneline/ledger';
import { servesOnlyWhenDeployed } from '@tuneline/provider';
import type { ApiDeps } from './app.ts';
import { HttpError } from './http.ts';
import { type CreditNeed, checkProviderAndDates, refuseUnlessCredits } from './routes/datasets.ts';

/**
 * One-call migration (issue 21.4), the API's part: check the target, rebuild the migrated fine-tune's
 * request for it (the same documents or document-store source, the same split seed, its job options),
 * estimate it at the target's price (402 when the credits do not cover it), and record the migration
 * with its fine-tune-request message in one transaction. From there the request goes through the same
 * queues as every other; the lifecycle ends the migration (packages/db/src/lifecycle/migration.ts).
 */

export interface MigrationTarget {
  provider: 'openai' | 'azure' | 'together';
  baseModel: string;
  hyperparameters?: Hyperparameters | undefined;
  promote: MigrationRule;
}

/** What a migration will queue, before it is recorded. */
interface MigrationPlan {
  fineTune: FineTuneRecord;
  request: Omit<FineTuneRequestInput, 'requestId'>;
  championFineTuneId: string | null;
  /**
   * Training at the target's price from the old dataset's counts, and the evaluation on its testing
   * examples at the target's inference price: what the trainer will reserve (null: no estimate).
   */
  need: CreditNeed | null;
  /** The new model's hourly deployment fee when the target serves only deployed models (Azure). */
  hostingCreditsPerHour: bigint | null;
}

const badField = (field: string, message: string) =>
  new HttpError(400, `${field}: ${message}`, [{ field, message }]);

/** The target's base model, if the catalogue, its dates at the provider and this deployment allow it (400). */
export async function checkTarget(
  deps: ApiDeps,
  licenseId: string,
  target: MigrationTarget,
): Promise<BaseModel> {
  const base = findBaseModel(target.baseModel, deps.catalogue);
  if (!base) throw badField('baseModel', `unknown base model "${target.baseModel}"`);
  if (!base.fineTunable) throw badField('baseModel', `base model "${target.baseModel}" is not fine-tunable`);
  await checkProviderAndDates(deps, licenseId, target);
  return base;
}

/** The provider a fine-tune's dates and "same target" are judged at: its own, else its model's. */
const atProvider = (deps: ApiDeps, f: Pick<FineTuneRecord, 'provider' | 'baseModel'>): string =>
  f.provider ?? findBaseModel(f.baseModel, deps.catalogue)?.provider ?? 'openai';

/**
 * A target that serves only deployed models (Azure): promoting the new model deploys it, at the
 * catalogue's hourly fee, as activation does (503 when this deployment cannot deploy, 409 without a fee).
 * Null for a target that serves at once, or a migration that never promotes.
 */
function deploymentFee(deps: ApiDeps, target: MigrationTarget, base: BaseModel): bigint | null {
  if (
    target.promote === 'never' ||
    !servesOnlyWhenDeployed(target.provider, deps.deployments.defaultProvider)
  )
    return null;
  if (deps.deployments.problem) throw new HttpError(503, deps.deployments.problem);
  const fee = hostingFeeOf(base, target.provider);
  if (fee === undefined)
    throw new HttpError(
      409,
      `the model catalogue has no hosting fee for "${base.name}" at ${target.provider} (providers.${target.provider}.hostingCreditsPerHour): the new model's deployment could not be metered`,
    );
  return fee;
}

async function planMigration(
  deps: ApiDeps,
  fineTune: FineTuneRecord,
  target: MigrationTarget,
  base: BaseModel,
): Promise<MigrationPlan> {
  if (fineTune.status !== 'succeeded' || !fineTune.fineTunedModel || !fineTune.available)
    throw new HttpError(
      409,
      `fine-tune ${fineTune.id} is ${fineTune.status}${fineTune.available ? '' : ', not available'}: only a trained, settled model can be migrated`,
    );
  if (fineTune.baseModel === target.baseModel && atProvider(deps, fineTune) === target.provider)
    throw badField(
      'baseModel',
      `fine-tune ${fineTune.id} is already on ${target.baseModel} at ${target.provider}`,
    );
  const dataset = await findDataset(deps.db, fineTune.datasetId);
  const stored = dataset ? await findRequestById(deps.db, dataset.requestRowId) : undefined;
  const parsed = fineTuneRequestSchema.safeParse(stored?.payload);
  if (!dataset || !parsed.success)
    throw new HttpError(
      409,
      `fine-tune ${fineTune.id}: its request is not stored in full, so its documents cannot be re-used`,
    );
  const original = parsed.data;
  const own = hyperparametersSchema.safeParse(fineTune.hyperparameters);
  const hyperparameters = target.hyperparameters ?? (own.success ? own.data : 'auto');
  const price = trainingPriceAt(base, target.provider) ?? base.creditsPerMillionTrainingTokens;
  const estimate = fineTuneEstimate(dataset, {
    hyperparameters: hyperparameters === 'auto' ? undefined : hyperparameters,
    creditsPerMillionTokens: price,
  });
  const { maxExamples } = await getEvaluationOptions(deps.db, fineTune.id);
  const evaluation = estimateEvaluation({
    baseModel: target.baseModel,
    testExamples: dataset.testExamples,
    testTokens: dataset.testTokens,
    maxExamples,
  });
  const fromBase = findBaseModel(fineTune.baseModel, deps.catalogue);
  // The old model answers the evaluation unless it is gone: discarded, or shut down at its provider.
  const canAnswer = !fineTune.discardedAt && !shutDown(fromBase, fineTune.provider, deps.clock.now());
  const description = `Migrated from ${fineTune.id}${fineTune.description ? `: ${fineTune.description}` : ''}`;
  return {
    fineTune,
    championFineTuneId: canAnswer ? fineTune.id : null,
    hostingCreditsPerHour: deploymentFee(deps, target, base),
    need: estimate ? { training: creditsForTokens(estimate.billedTokens, price), evaluation } : null,
    request: {
      licenseId: fineTune.licenseId,
      ...(original.documentStore
        ? { documentStore: { configuration: original.documentStore.configuration } }
        : { documents: original.documents ?? [] }),
      modelConfig: original.modelConfig,
      dump: original.dump,
      testPercent: original.testPercent,
      baseModel: target.baseModel,
      provider: target.provider,
      // The same split on the new base model: the same testing documents for both models.
      splitSeed: splitSeed(original),
      job: {
        description: description.slice(0, 120),
        notifyEmails: fineTune.notifyEmails.join(';'),
        suffix: fineTune.suffix,
        hyperparameters,
        evaluate: true,
        evaluation: { maxExamples },
      },
      autoTrain: true,
    },
  };
}

/** Records a planned migration and queues its request, in one transaction; publishes it after. */
async function recordPlanned(
  deps: ApiDeps,
  plan: MigrationPlan,
  input: { target: MigrationTarget; idempotencyKey: string | null; actor: string },
): Promise<{ migration: MigrationRecord; created: boolean }> {
  const id = randomUUID();
  return inTransaction(deps.db, async (tx) => {
    const result = await insertMigration(tx, {
      id,
      licenseId: plan.fineTune.licenseId,
      fromFineTuneId: plan.fineTune.id,
      championFineTuneId: plan.championFineTuneId,
      provider: input.target.provider,
      baseModel: input.target.baseModel,
      hyperparameters: plan.request.job?.hyperparameters ?? 'auto',
      promote: input.target.promote,
      hostingCreditsPerHour: plan.hostingCreditsPerHour,
      idempotencyKey: input.idempotencyKey,
      actor: input.actor,
    });
    if (result.created)
      await writeOutbox(
        tx,
        fineTuneRequestMessage({
          request: { ...plan.request, requestId: migrationRequestId(id) },
          correlationId: `migration-${id}`,
        }),
      );
    return result;
  });
}

/** Whether an existing migration is the one asked for (an idempotency key used again). */
const sameMigration = (m: MigrationRecord, fineTuneId: string, target: MigrationTarget) =>
  m.from.fineTuneId === fineTuneId &&
  m.target.provider === target.provider &&
  m.target.baseModel === target.baseModel;

/**
 * Starts the migration of one fine-tune, or returns the one that exists: with an idempotency key, the
 * key's (422 when it was used for another fine-tune or target); without, the same fine-tune and target's.
 */
export async function startMigration(
  deps: ApiDeps,
  input: { fineTune: FineTuneRecord; target: MigrationTarget; idempotencyKey: string | null; actor: string },
): Promise<{ migration: MigrationRecord; created: boolean }> {
  const { fineTune, target, idempotencyKey } = input;
  const existing = idempotencyKey
    ? await findMigrationByKey(deps.db, fineTune.licenseId, idempotencyKey)
    : await findMigrationByTarget(deps.db, {
        licenseId: fineTune.licenseId,
        fromFineTuneId: fineTune.id,
        ...target,
      });
  if (existing) {
    if (!sameMigration(existing, fineTune.id, target))
      throw new HttpError(422, 'this Idempotency-Key was used for another migration');
    return { migration: existing, created: false };
  }
  const base = await checkTarget(deps, fineTune.licenseId, target);
  const plan = await planMigration(deps, fineTune, target, base);
  if (plan.need) await refuseUnlessCredits(deps, fineTune.licenseId, plan.need);
  const result = await recordPlanned(deps, plan, input);
  if (idempotencyKey && !sameMigration(result.migration, fineTune.id, target))
    throw new HttpError(422, 'this Idempotency-Key was used for another migration');
  if (result.created) await deps.flushOutbox();
  return result;
}

export interface BulkResult {
  data: MigrationRecord[];
  created: number;
  estimate: bigint;
  skipped: { fineTuneId: string; reason: string }[];
}

/**
 * Migrates every given fine-tune of one license to the target (each by its natural key: an earlier
 * migration to the same target is returned, not repeated). The new ones' estimates are checked together
 * (402 before any starts); a fine-tune that cannot be migrated is skipped with the reason.
 */
export async function startBulkMigration(
  deps: ApiDeps,
  input: { licenseId: string; fineTunes: FineTuneRecord[]; target: MigrationTarget; actor: string },
): Promise<BulkResult> {
  const base = await checkTarget(deps, input.licenseId, input.target);
  const earlier: MigrationRecord[] = [];
  const plans: MigrationPlan[] = [];
  const skipped: BulkResult['skipped'] = [];
  for (const fineTune of input.fineTunes) {
    const found = await findMigrationByTarget(deps.db, {
      licenseId: input.licenseId,
      fromFineTuneId: fineTune.id,
      ...input.target,
    });
    if (found) {
      earlier.push(found);
      continue;
    }
    try {
      plans.push(await planMigration(deps, fineTune, input.target, base));
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500) throw err;
      skipped.push({ fineTuneId: fineTune.id, reason: err.message });
    }
  }
  const need: CreditNeed = { training: 0n, evaluation: { credits: 0n, examples: 0, models: 0 } };
  for (const p of plans) {
    if (!p.need) continue;
    need.training += p.need.training;
    need.evaluation.credits += p.need.evaluation.credits;
    need.evaluation.examples += p.need.evaluation.examples;
    need.evaluation.models = Math.max(need.evaluation.models, p.need.evaluation.models);
  }
  const estimate = need.training + need.evaluation.credits;
  if (plans.length) await refuseUnlessCredits(deps, input.licenseId, need);
  const started: MigrationRecord[] = [];
  let created = 0;
  for (const plan of plans) {
    const result = await recordPlanned(deps, plan, { ...input, idempotencyKey: null });
    started.push(result.migration);
    if (result.created) created++;
  }
  if (created) await deps.flushOutbox();
  return { data: [...earlier, ...started], created, estimate, skipped };
}

/** A bulk selection's fine-tunes at `fromProvider` (a fine-tune without one is at its model's own). */
export const atFromProvider = (
  deps: ApiDeps,
  fineTunes: FineTuneRecord[],
  fromProvider: string | undefined,
) => (fromProvider ? fineTunes.filter((f) => atProvider(deps, f) === fromProvider) : fineTunes);
