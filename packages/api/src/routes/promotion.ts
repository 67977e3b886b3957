import { trainingProfileSchema } from '@tuneline/contracts';
import { findBaseModel, shutDown, shutdownMessage } from '@tuneline/dataset';
import {
  findAliasTarget,
  findVersionFineTune,
  findVersionOfFineTune,
  inTransaction,
  listProfileVersions,
  lockVersionPromotion,
  promoteFineTune,
  recordVersionPromotion,
  type TrainingProfileRecord,
} from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { actorOf } from '../auth.ts';
import { HttpError, notFound, type RouteTable } from '../http.ts';
import { ownTrainingProfile } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { profileVersionParams, promoteVersionSchema } from '../schemas.ts';

// Champion and challenger (issue 22.4): what became of a training-profile version's model, and the
// promotion by hand. The policy's own decision is the evaluator's (services/evaluator/src/promotion.ts).

const aliasOf = (settings: unknown): string | null =>
  trainingProfileSchema.safeParse(settings).data?.alias ?? null;

/** The fine-tune the profile's alias serves now (undefined: no alias, or it serves nothing usable). */
export async function servingFineTune(
  deps: ApiDeps,
  profile: Pick<TrainingProfileRecord, 'licenseId' | 'settings'>,
): Promise<string | undefined> {
  const alias = aliasOf(profile.settings);
  if (!alias) return undefined;
  return (await findAliasTarget(deps.db, { licenseId: profile.licenseId, name: alias }))?.fineTuneId;
}

/** A version as the API shows it: `serving` when the profile's alias serves its model now. */
export const versionView = <V extends { fineTuneId: string | null }>(v: V, serving: string | undefined) => ({
  ...v,
  serving: v.fineTuneId !== null && v.fineTuneId === serving,
});

/**
 * The evaluation view's `profileVersion`: the version a fine-tune trained, its decision, whether the
 * alias serves it, and where to promote it by hand; null for a fine-tune of any other request.
 */
export async function fineTuneVersionView(deps: ApiDeps, fineTuneId: string) {
  const version = await findVersionOfFineTune(deps.db, fineTuneId);
  if (!version) return null;
  const serving = await servingFineTune(deps, version);
  return {
    profile: version.profileName,
    version: version.version,
    alias: aliasOf(version.settings),
    serving: serving === fineTuneId,
    promotion: version.promotion,
    promotePath: `/v1/training-profiles/${encodeURIComponent(version.profileName)}/versions/${version.version}/promote`,
  };
}

export function registerPromotionRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'training-profiles').add(
    {
      method: 'POST',
      url: '/v1/training-profiles/:name/versions/:version/promote',
      summary:
        "Promote a version by hand, whatever its evaluation or the policy decided: its model is activated and the profile's " +
        'alias pointed at it atomically (recorded: who, when, from, to); the version shows `promotion.decision` `promoted` ' +
        'with you as the actor. Promoting an earlier version rolls the alias back to it. Repeating the call changes nothing.',
      params: profileVersionParams,
      responses: {
        200: { description: 'the version after the call, and the alias', schema: promoteVersionSchema },
        400: 'invalid name or version',
        404: 'no such training profile or version for this license',
        409: 'the version has no available model yet, or its base model is shut down (names the successor)',
      },
    },
    async ({ licenseId, params, caller }) => {
      const profile = await ownTrainingProfile(deps, licenseId, params.name);
      const target = await findVersionFineTune(deps.db, {
        profileId: profile.id,
        licenseId,
        version: params.version,
      });
      if (!target?.available || !target.model) {
        const versions = await listProfileVersions(deps.db, profile);
        if (!versions.some((v) => v.version === params.version)) throw notFound('training profile version');
        throw new HttpError(
          409,
          `version ${params.version} has no available model yet (its fine-tune is not trained and settled)`,
        );
      }
      const base = findBaseModel(target.baseModel, deps.catalogue);
      if (base && shutDown(base, target.provider, deps.clock.now()))
        throw new HttpError(409, shutdownMessage(base, target.provider, target.model));
      const alias = aliasOf(profile.settings);
      const actor = actorOf(caller);
      const changed = await inTransaction(deps.db, async (tx) => {
        const locked = await lockVersionPromotion(tx, profile.id, params.version);
        const before = locked?.promotion ?? null;
        const result = await promoteFineTune(tx, { licenseId, fineTuneId: target.fineTuneId, alias, actor });
        if (result.outcome !== 'promoted')
          throw new HttpError(409, `version ${params.version}'s model is not available`);
        const moved = result.alias?.outcome === 'switched';
        if (!moved && before?.decision === 'promoted' && before.fineTuneId === target.fineTuneId)
          return false;
        const policy = before?.actor.startsWith('policy:')
          ? ` (the policy had decided: ${before.reason})`
          : '';
        await recordVersionPromotion(tx, {
          profileId: profile.id,
          version: params.version,
          decision: 'promoted',
          rule: null,
          reason: `promoted by hand${policy}`,
          actor,
          alias,
          fineTuneId: target.fineTuneId,
          championFineTuneId:
            result.alias?.outcome === 'switched'
              ? result.alias.change.fromFineTuneId
              : (before?.championFineTuneId ?? null),
          undecidedOnly: false,
        });
        return true;
      });
      const serving = await servingFineTune(deps, profile);
      const version = (await listProfileVersions(deps.db, profile)).find((v) => v.version === params.version);
      const now = alias ? await findAliasTarget(deps.db, { licenseId, name: alias }) : undefined;
      return {
        version: versionView(version as NonNullable<typeof version>, serving),
        changed,
        alias: alias && now ? { name: alias, fineTuneId: now.fineTuneId, model: now.model } : null,
      };
    },
  );
}
