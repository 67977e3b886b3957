import { trainingProfileSchema } from '@tuneline/contracts';
import { findBaseModel, hostingFeeOf, shutDown, shutdownMessage } from '@tuneline/dataset';
import {
  type Executor,
  findAliasTarget,
  findVersionFineTune,
  findVersionOfFineTune,
  inSnapshot,
  inTransaction,
  listProfileVersions,
  type PromotionHosting,
  promoteVersionByHand,
  type TrainingProfileRecord,
} from '@tuneline/db';
import { servesOnlyWhenDeployed } from '@tuneline/provider';
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

/**
 * The fine-tune the profile's alias serves now (undefined: no alias, or it serves nothing usable). Read
 * it on the same snapshot (`inSnapshot`) as the versions it is shown with: a promotion commits its
 * decision and its alias move together, and two reads could straddle that commit.
 */
export async function servingFineTune(
  db: Executor,
  profile: Pick<TrainingProfileRecord, 'licenseId' | 'settings'>,
): Promise<string | undefined> {
  const alias = aliasOf(profile.settings);
  if (!alias) return undefined;
  return (await findAliasTarget(db, { licenseId: profile.licenseId, name: alias }))?.fineTuneId;
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
  const read = await inSnapshot(deps.db, async (tx) => {
    const version = await findVersionOfFineTune(tx, fineTuneId);
    return version ? { version, serving: await servingFineTune(tx, version) } : undefined;
  });
  if (!read) return null;
  const { version, serving } = read;
  return {
    profile: version.profileName,
    version: version.version,
    alias: aliasOf(version.settings),
    serving: serving === fineTuneId,
    promotion: version.promotion,
    promotePath: `/v1/training-profiles/${encodeURIComponent(version.profileName)}/versions/${version.version}/promote`,
  };
}

/**
 * A model served only once deployed (Azure) is deployed by its promotion, at the catalogue's hourly fee,
 * as activation does (503 when this deployment cannot deploy, 409 without a fee); null: served at once.
 */
function hostingOf(deps: ApiDeps, target: { provider: string | null; baseModel: string }): PromotionHosting {
  if (!servesOnlyWhenDeployed(target.provider, deps.deployments.defaultProvider)) return null;
  if (deps.deployments.problem) throw new HttpError(503, deps.deployments.problem);
  const provider = target.provider ?? deps.deployments.defaultProvider;
  const fee = hostingFeeOf(findBaseModel(target.baseModel, deps.catalogue), provider);
  if (fee === undefined)
    throw new HttpError(
      409,
      `the model catalogue has no hosting fee for "${target.baseModel}" at ${provider} (providers.${provider}.hostingCreditsPerHour): its deployment could not be metered`,
    );
  return { provider, creditsPerHour: fee };
}

export function registerPromotionRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'training-profiles').add(
    {
      method: 'POST',
      url: '/v1/training-profiles/:name/versions/:version/promote',
      summary:
        "Promote a version by hand, whatever its evaluation or the policy decided: its model is activated and the profile's " +
        'alias pointed at it atomically (recorded: who, when, from, to); the version shows `promotion.decision` `promoted` ' +
        'with you as the actor. A model served only once deployed (Azure) is deployed first (hourly fee) and the alias ' +
        'moves when it serves. Promoting an earlier version rolls the alias back to it. Repeating the call changes nothing.',
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
      const hosting = hostingOf(deps, target);
      const done = await inTransaction(deps.db, async (tx) => {
        const result = await promoteVersionByHand(tx, {
          profileId: profile.id,
          version: params.version,
          fineTune: { id: target.fineTuneId, licenseId, active: target.active },
          alias,
          actor: actorOf(caller),
          hosting,
        });
        // Thrown inside: nothing of a refused promotion commits.
        if (result.outcome === 'not_available' || result.outcome === 'refused')
          throw new HttpError(
            409,
            `version ${params.version}'s model is not ${result.outcome === 'refused' ? `deployable (${result.why})` : 'available'}`,
          );
        return result;
      });
      // Its deployment's first link, to the poller now (the alias moves when it serves).
      if (done.outcome === 'deploying') await deps.flushOutbox();
      const changed = done.outcome !== 'unchanged';
      const { serving, version, now } = await inSnapshot(deps.db, async (tx) => ({
        serving: await servingFineTune(tx, profile),
        version: (await listProfileVersions(tx, profile)).find((v) => v.version === params.version),
        now: alias ? await findAliasTarget(tx, { licenseId, name: alias }) : undefined,
      }));
      return {
        version: versionView(version as NonNullable<typeof version>, serving),
        changed,
        alias: alias && now ? { name: alias, fineTuneId: now.fineTuneId, model: now.model } : null,
      };
    },
  );
}
