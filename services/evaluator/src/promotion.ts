import { type TrainingProfileSettings, trainingProfileSchema } from '@tuneline/contracts';
import { type Catalogue, findBaseModel, hostingFeeOf, loadCatalogue } from '@tuneline/dataset';
import {
  type Executor,
  type FineTuneRecord,
  findAliasTarget,
  findChampion,
  findVersionOfFineTune,
  finishEvaluation,
  getFineTune,
  inTransaction,
  lockVersionPromotion,
  migrationOfFineTune,
  type NewPromotion,
  type PromotionHosting,
  type PromotionOutcome,
  promoteVersionByPolicy,
  recordVersionPromotion,
  type VersionOfFineTune,
} from '@tuneline/db';
import { decidePromotion, type EvaluationSummary, type PromotionRule } from '@tuneline/evaluation';
import { chargeEvaluationRun } from '@tuneline/ledger';
import { providerEnvSchema, resolveProviderSettings, servesOnlyWhenDeployed } from '@tuneline/provider';

/**
 * Champion and challenger (issue 22.4) in the evaluator: which model a training-profile version is
 * compared with, and, in the transaction that ends its evaluation, the promotion rule's decision and
 * the alias move it calls for. Runs that are no profile version keep issue 18's champion and no decision.
 */

type FineTuneRef = Pick<FineTuneRecord, 'id' | 'licenseId'>;
type EvaluationEnd =
  | { status: 'succeeded'; summary: EvaluationSummary }
  | { status: 'failed'; reason: string };

/** The profile's alias and promotion rule (an unreadable profile leaves it to a person). */
function profileOf(version: VersionOfFineTune): { alias: string | null; rule: PromotionRule } {
  const parsed = trainingProfileSchema.safeParse(version.settings);
  if (!parsed.success) return { alias: null, rule: 'manual' };
  const settings: TrainingProfileSettings = parsed.data;
  return { alias: settings.alias ?? null, rule: settings.policy.promotion };
}

/**
 * The champion of a fine-tune: for a migration's (issue 21.4), the model it migrates from, explicitly
 * (none when that one could not answer); for a training-profile version whose profile names an alias,
 * the usable model the alias serves (none for a first version); otherwise the license's active model
 * for the same configuration (issue 18).
 */
export async function findChampionOf(
  db: Executor,
  fineTune: FineTuneRef,
  datasetId: string,
): Promise<{ fineTuneId: string; model: string } | undefined> {
  const migration = await migrationOfFineTune(db, fineTune.id);
  if (migration)
    return migration.championFineTuneId && migration.championModel
      ? { fineTuneId: migration.championFineTuneId, model: migration.championModel }
      : undefined;
  const version = await findVersionOfFineTune(db, fineTune.id);
  const alias = version ? profileOf(version).alias : null;
  if (alias) return findAliasTarget(db, { licenseId: fineTune.licenseId, name: alias, except: fineTune.id });
  return findChampion(db, { licenseId: fineTune.licenseId, fineTuneId: fineTune.id, datasetId });
}

/** The catalogue (`MODEL_CATALOGUE_FILE`) and deployment default this process runs with, read once. */
let running: { catalogue: Catalogue; defaultKind: string } | undefined;
const runningWith = () =>
  (running ??= {
    catalogue: loadCatalogue(),
    defaultKind: resolveProviderSettings(providerEnvSchema.parse(process.env)).kind,
  });

/**
 * Where a model is served once promoted: null for a provider that serves it at once; for one that
 * serves only deployed models (Azure), the catalogue's hourly fee (a string: why it cannot be deployed).
 */
function hostingOf(fineTune: Pick<FineTuneRecord, 'provider' | 'baseModel'>): PromotionHosting | string {
  const { catalogue, defaultKind } = runningWith();
  if (!servesOnlyWhenDeployed(fineTune.provider, defaultKind)) return null;
  const provider = fineTune.provider ?? defaultKind;
  const fee = hostingFeeOf(findBaseModel(fineTune.baseModel, catalogue), provider);
  return fee === undefined
    ? `the model catalogue has no hosting fee for "${fineTune.baseModel}" at ${provider}`
    : { provider, creditsPerHour: fee };
}

/**
 * Decides about the fine-tune's profile version, once: the version row is locked and decided only while
 * undecided, so a re-run (or a promotion by hand that came first) changes nothing. To promote, the model
 * is activated and the alias pointed at it (who: `policy:<profile>`), but only if the alias still serves
 * the champion the evaluation compared with; a model served only once deployed (Azure) is deployed
 * first and the alias moves when it serves (lifecycle `promoteVersionByPolicy`). Undefined when the
 * fine-tune is no profile version.
 */
export async function decideVersionPromotion(
  tx: Executor,
  fineTune: FineTuneRef,
  championFineTuneId: string | null,
  end: EvaluationEnd,
): Promise<NewPromotion | undefined> {
  const version = await findVersionOfFineTune(tx, fineTune.id);
  if (!version) return undefined;
  const locked = await lockVersionPromotion(tx, version.profileId, version.version);
  if (!locked || locked.promotion) return undefined;
  const { alias, rule } = profileOf(version);
  const decision = decidePromotion({ rule, evaluation: end });
  const outcomes: Record<typeof decision.action, PromotionOutcome> = {
    promote: 'promoted',
    keep: 'kept',
    manual: 'manual',
  };
  const promotion: NewPromotion = {
    profileId: version.profileId,
    version: version.version,
    decision: outcomes[decision.action],
    rule,
    reason: decision.reason,
    actor: `policy:${version.profileName}`,
    alias: decision.action === 'promote' ? alias : null,
    fineTuneId: fineTune.id,
    championFineTuneId,
  };
  if (decision.action !== 'promote') {
    await recordVersionPromotion(tx, { ...promotion, undecidedOnly: true });
    return promotion;
  }
  const model = await getFineTune(tx, fineTune.id);
  const hosting = model ? hostingOf(model) : null;
  if (typeof hosting === 'string') {
    const kept: NewPromotion = {
      ...promotion,
      decision: 'kept',
      alias: null,
      reason: `not promoted: the model could not be deployed (${hosting}; the rule held: ${decision.reason})`,
    };
    await recordVersionPromotion(tx, { ...kept, undecidedOnly: true });
    return kept;
  }
  return promoteVersionByPolicy(
    tx,
    { ...promotion, licenseId: fineTune.licenseId },
    { id: fineTune.id, licenseId: fineTune.licenseId, active: model?.active ?? false },
    hosting,
  );
}

/**
 * Ends the evaluation (lifecycle `finishEvaluation`: the run's end and the outcome e-mails) and, when
 * this call ended it, decides the version's promotion in the same transaction: the decision, the alias
 * move and the e-mails commit together or not at all. The same transaction charges the run (issue 18.3:
 * the sum of its answers' credits, from the fine-tune's evaluation hold, the rest released): ending the
 * run locked its row, so no answer is stored after the sum is taken, and a second call charges nothing.
 */
export async function finishAndDecide(
  db: Executor,
  fineTune: Pick<
    FineTuneRecord,
    'id' | 'licenseId' | 'baseModel' | 'status' | 'notifyEmails' | 'correlationId'
  >,
  run: { id: string; championFineTuneId: string | null },
  end: EvaluationEnd,
): Promise<void> {
  await inTransaction(db, async (tx) => {
    const { finished } = await finishEvaluation(tx, fineTune, end);
    if (finished) await decideVersionPromotion(tx, fineTune, run.championFineTuneId, end);
    await chargeEvaluationRun(tx, {
      runId: run.id,
      fineTuneId: fineTune.id,
      licenseId: fineTune.licenseId,
      model: fineTune.baseModel,
    });
  });
}
