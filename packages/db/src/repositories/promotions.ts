import { sql } from 'kysely';
import type { Executor } from '../connection.ts';
import { type AliasSwitch, aliasSwitchedElsewhere, pointAlias } from './aliases.ts';
import { setFineTuneActive } from './fine-tunes.ts';
import { inTransaction } from './outbox.ts';

/**
 * Champion and challenger (issue 22.4): what became of a training-profile version's model, recorded
 * once on its `profile_versions` row (migration 0045), and the promotion itself: the model activated
 * and the profile's alias pointed at it, in one transaction with the record.
 */

export type PromotionOutcome = 'promoted' | 'kept' | 'manual';

export interface PromotionRecord {
  decision: PromotionOutcome;
  /** The policy's rule when it decided; null for a promotion by hand. */
  rule: string | null;
  reason: string;
  /** `policy:<profile>` or `key:<prefix>`. */
  actor: string;
  /** The alias moved (null: the profile names none). */
  alias: string | null;
  fineTuneId: string;
  championFineTuneId: string | null;
  at: Date;
}

/** A fine-tune's training-profile version: the profile (settings unparsed) and the version's decision. */
export interface VersionOfFineTune {
  profileId: string;
  profileName: string;
  licenseId: string;
  settings: unknown;
  version: number;
  promotion: PromotionRecord | null;
}

type PromotionColumns = {
  promotion: PromotionOutcome | null;
  promotion_rule: string | null;
  promotion_reason: string | null;
  promotion_actor: string | null;
  promotion_alias: string | null;
  promotion_at: Date | null;
  fine_tune_id: string | null;
  champion_fine_tune_id: string | null;
};

export const toPromotion = (r: PromotionColumns): PromotionRecord | null =>
  r.promotion && r.fine_tune_id
    ? {
        decision: r.promotion,
        rule: r.promotion_rule,
        reason: r.promotion_reason ?? '',
        actor: r.promotion_actor ?? '',
        alias: r.promotion_alias,
        fineTuneId: r.fine_tune_id,
        championFineTuneId: r.champion_fine_tune_id,
        at: r.promotion_at ?? new Date(0),
      }
    : null;

const promotionColumns = [
  'v.promotion',
  'v.promotion_rule',
  'v.promotion_reason',
  'v.promotion_actor',
  'v.promotion_alias',
  'v.promotion_at',
  'v.fine_tune_id',
  'v.champion_fine_tune_id',
] as const;

/**
 * The training-profile version a fine-tune trained (its request is the version's `requestId` of the
 * same license), or undefined for a fine-tune of any other request.
 */
export async function findVersionOfFineTune(
  db: Executor,
  fineTuneId: string,
): Promise<VersionOfFineTune | undefined> {
  const row = await db
    .selectFrom('fine_tunes as f')
    .innerJoin('datasets as d', 'd.id', 'f.dataset_id')
    .innerJoin('fine_tune_requests as r', 'r.id', 'd.request_row_id')
    .innerJoin('profile_versions as v', 'v.request_id', 'r.request_id')
    .innerJoin('training_profiles as p', (join) =>
      join.onRef('p.id', '=', 'v.profile_id').onRef('p.license_id', '=', 'r.license_id'),
    )
    .select(['p.id', 'p.name', 'p.license_id', 'p.settings', 'v.version', ...promotionColumns])
    .where('f.id', '=', fineTuneId)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    profileId: row.id,
    profileName: row.name,
    licenseId: row.license_id,
    settings: row.settings,
    version: row.version,
    promotion: toPromotion(row),
  };
}

/**
 * A version's model: the fine-tune its decision names, else the newest available fine-tune of the
 * dataset its request built (undefined while none is trained).
 */
export async function findVersionFineTune(
  db: Executor,
  input: { profileId: string; licenseId: string; version: number },
): Promise<
  | {
      fineTuneId: string;
      model: string | null;
      baseModel: string;
      provider: string | null;
      available: boolean;
      active: boolean;
    }
  | undefined
> {
  const row = await db
    .selectFrom('profile_versions as v')
    .innerJoin('fine_tune_requests as r', (join) =>
      join.onRef('r.request_id', '=', 'v.request_id').on('r.license_id', '=', input.licenseId),
    )
    .innerJoin('datasets as d', 'd.request_row_id', 'r.id')
    .innerJoin('fine_tunes as f', 'f.dataset_id', 'd.id')
    .select(['f.id', 'f.fine_tuned_model', 'f.base_model', 'f.provider', 'f.available', 'f.active'])
    .where('v.profile_id', '=', input.profileId)
    .where('v.version', '=', input.version)
    .where((eb) => eb.or([eb('v.fine_tune_id', 'is', null), eb('v.fine_tune_id', '=', eb.ref('f.id'))]))
    .orderBy('f.available', 'desc')
    .orderBy('f.created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row
    ? {
        fineTuneId: row.id,
        model: row.fine_tuned_model,
        baseModel: row.base_model,
        provider: row.provider,
        available: row.available,
        active: row.active,
      }
    : undefined;
}

/**
 * The version's decision, with the row locked for the rest of the transaction (undefined: no such
 * version); `deploying` while a promotion waits for its model's deployment to serve.
 */
export async function lockVersionPromotion(
  tx: Executor,
  profileId: string,
  version: number,
): Promise<{ promotion: PromotionRecord | null; deploying: boolean } | undefined> {
  const row = await tx
    .selectFrom('profile_versions as v')
    .select([...promotionColumns, 'v.promotion_deploying'])
    .where('v.profile_id', '=', profileId)
    .where('v.version', '=', version)
    .forUpdate()
    .executeTakeFirst();
  return row ? { promotion: toPromotion(row), deploying: row.promotion_deploying } : undefined;
}

/** A decision to record on a profile version: the record, stamped `at` when written. */
export type NewPromotion = Omit<PromotionRecord, 'at'> & { profileId: string; version: number };

/**
 * Records a version's decision. `undecidedOnly` (the policy): only while none is recorded, so the
 * claim is made once; false when another decision was there. A promotion by hand always records.
 * `deploying`: promoted, the alias moves when the model's deployment serves (lifecycle `deploymentServes`).
 */
export async function recordVersionPromotion(
  tx: Executor,
  p: NewPromotion & { undecidedOnly: boolean; deploying?: boolean },
): Promise<boolean> {
  let query = tx
    .updateTable('profile_versions')
    .set({
      promotion_deploying: p.deploying ?? false,
      fine_tune_id: p.fineTuneId,
      champion_fine_tune_id: p.championFineTuneId,
      promotion: p.decision,
      promotion_rule: p.rule,
      promotion_reason: p.reason,
      promotion_actor: p.actor,
      promotion_alias: p.alias,
      promotion_at: sql`now()`,
    })
    .where('profile_id', '=', p.profileId)
    .where('version', '=', p.version);
  if (p.undecidedOnly) query = query.where('promotion', 'is', null);
  const result = await query.executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

export type PromoteResult =
  /** Activated, and the alias (if the profile names one) points at it: `alias` says whether it moved. */
  | { outcome: 'promoted'; alias: AliasSwitch | null }
  /** The model is not this license's, or not available (not trained or not settled). */
  | { outcome: 'not_available' }
  /** `expectedFineTuneId`: the alias was switched to another usable model meanwhile. */
  | { outcome: 'moved'; currentFineTuneId: string };

/**
 * Serves a version's model: activates it (as `POST /v1/fine-tunes/:id/activate` does; the champion stays
 * active, so the alias can be rolled back) and points the alias at it through `pointAlias`, which
 * records who, when, from and to. In the caller's transaction, or one of its own.
 */
export async function promoteFineTune(
  db: Executor,
  input: {
    licenseId: string;
    fineTuneId: string;
    alias: string | null;
    actor: string;
    /** Move the alias only if it still serves this (pointAlias `expectedFineTuneId`). */
    expectedFineTuneId?: string | null;
  },
): Promise<PromoteResult> {
  return inTransaction(db, async (tx) => {
    // Checked (and the alias row locked) before anything changes, so a refusal leaves the model as it was.
    if (input.alias && input.expectedFineTuneId !== undefined) {
      const moved = await aliasSwitchedElsewhere(tx, {
        licenseId: input.licenseId,
        name: input.alias,
        fineTuneId: input.fineTuneId,
        expectedFineTuneId: input.expectedFineTuneId,
      });
      if (moved) return { outcome: 'moved', currentFineTuneId: moved };
    }
    const active = await setFineTuneActive(tx, {
      id: input.fineTuneId,
      licenseId: input.licenseId,
      active: true,
    });
    if (!active?.fineTunedModel) return { outcome: 'not_available' };
    if (!input.alias) return { outcome: 'promoted', alias: null };
    const switched = await pointAlias(tx, {
      licenseId: input.licenseId,
      name: input.alias,
      fineTuneId: input.fineTuneId,
      actor: input.actor,
    });
    if (switched.outcome !== 'switched' && switched.outcome !== 'unchanged')
      return { outcome: 'not_available' };
    return { outcome: 'promoted', alias: switched };
  });
}

/** A version promoted while its model deploys (the record as decided), with its license. */
export type DeployingVersion = NewPromotion & { licenseId: string };

/** The version waiting for this fine-tune's deployment to serve, its row locked (undefined: none). */
export async function lockDeployingVersion(
  tx: Executor,
  fineTuneId: string,
): Promise<DeployingVersion | undefined> {
  const version = await findVersionOfFineTune(tx, fineTuneId);
  const locked = version && (await lockVersionPromotion(tx, version.profileId, version.version));
  if (!version || !locked?.deploying || locked.promotion?.fineTuneId !== fineTuneId) return undefined;
  const { at: _, ...decided } = locked.promotion;
  return { ...decided, profileId: version.profileId, version: version.version, licenseId: version.licenseId };
}

/**
 * Other versions of the profile still waiting for a deployment to serve: `kept` with `reason` (a later
 * promotion of another version won). Returns their numbers.
 */
export async function keepOtherDeployingVersions(
  tx: Executor,
  input: { profileId: string; version: number; reason: string },
): Promise<number[]> {
  const kept = await tx
    .updateTable('profile_versions')
    .set({
      promotion: 'kept',
      promotion_reason: input.reason,
      promotion_alias: null,
      promotion_deploying: false,
      promotion_at: sql`now()`,
    })
    .where('profile_id', '=', input.profileId)
    .where('version', '<>', input.version)
    .where('promotion_deploying', '=', true)
    .returning('version')
    .execute();
  return kept.map((r) => r.version);
}
