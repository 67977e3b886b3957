import type { Executor } from '../connection.ts';
import { findAliasTarget } from '../repositories/aliases.ts';
import type { FineTuneRecord } from '../repositories/fine-tunes.ts';
import {
  type DeployingVersion,
  keepOtherDeployingVersions,
  lockDeployingVersion,
  lockVersionPromotion,
  type NewPromotion,
  type PromoteResult,
  promoteFineTune,
  recordVersionPromotion,
} from '../repositories/promotions.ts';
import { deployForPromotion, type PromotionHosting } from './promote-deploy.ts';

/**
 * Champion and challenger (issue 22.4) in the fine-tune lifecycle: a training-profile version's
 * promotion, by its policy (the evaluator) or by hand (the API), carried out through deploy-then-promote
 * (`deployForPromotion`). A model served at once is activated and the profile's alias pointed at it in
 * the decision's transaction; one served only once deployed (Azure) is recorded `promoted` while its
 * deployment runs (`promotion_deploying`), and its alias moves when the deployment serves
 * (`versionDeploymentServes`, from `deploymentServes`), exactly once, by the same `carryOut`.
 */

type FineTuneRef = Pick<FineTuneRecord, 'id' | 'licenseId' | 'active'>;

const WHEN_SERVES = ': the alias moves when it serves';
const deployingReason = (reason: string, note: string) => `${reason}; ${note}${WHEN_SERVES}`;
/** The decision's own reason, without what the deployment added to it. */
const decidedReason = (reason: string) => reason.replace(/; deploying the new model at .*$/, '');

const withoutLicense = ({ licenseId: _, ...promotion }: DeployingVersion): NewPromotion => promotion;

/** Records a `promoted` decision; a later promotion wins over another version still waiting to serve. */
async function record(
  tx: Executor,
  promotion: NewPromotion,
  opts: { undecidedOnly: boolean; deploying?: boolean },
): Promise<boolean> {
  const recorded = await recordVersionPromotion(tx, { ...promotion, ...opts });
  if (recorded && promotion.decision === 'promoted')
    await keepOtherDeployingVersions(tx, {
      profileId: promotion.profileId,
      version: promotion.version,
      reason: `not promoted: version ${promotion.version} was promoted (${promotion.actor}) while this one's model was deploying`,
    });
  return recorded;
}

/**
 * Promotes now: the model activated and the alias pointed at it, only if the alias still serves the
 * champion (`championFineTuneId`) the decision was made against; `kept` otherwise, with the reason.
 */
async function carryOut(
  tx: Executor,
  p: DeployingVersion,
  opts: { undecidedOnly: boolean; meanwhile: string },
): Promise<{ promotion: NewPromotion; result: PromoteResult; recorded: boolean }> {
  const result = await promoteFineTune(tx, {
    licenseId: p.licenseId,
    fineTuneId: p.fineTuneId,
    alias: p.alias,
    actor: p.actor,
    expectedFineTuneId: p.championFineTuneId,
  });
  let promotion = withoutLicense(p);
  if (result.outcome === 'moved') {
    const why = p.rule ? `the rule held: ${decidedReason(p.reason)}` : decidedReason(p.reason);
    promotion = {
      ...promotion,
      decision: 'kept',
      alias: null,
      reason: `not promoted: the alias "${p.alias}" was switched to fine-tune ${result.currentFineTuneId} ${opts.meanwhile}, which compared with ${p.championFineTuneId ?? 'no champion'} (${why})`,
    };
  } else if (result.outcome === 'not_available') {
    promotion = {
      ...promotion,
      decision: 'kept',
      alias: null,
      reason: 'not promoted: the model is not available',
    };
  }
  return { promotion, result, recorded: await record(tx, promotion, { undecidedOnly: opts.undecidedOnly }) };
}

/**
 * A policy's decision to promote a version (`p`, decision `promoted`, its row locked by the caller and
 * still undecided), carried out and recorded once: now, or once its deployment serves.
 */
export async function promoteVersionByPolicy(
  tx: Executor,
  p: DeployingVersion,
  fineTune: FineTuneRef,
  hosting: PromotionHosting,
): Promise<NewPromotion> {
  const deployment = await deployForPromotion(tx, fineTune, hosting);
  if (deployment.state === 'serving')
    return (await carryOut(tx, p, { undecidedOnly: true, meanwhile: 'during the evaluation' })).promotion;
  const promotion: NewPromotion =
    deployment.state === 'deploying'
      ? { ...withoutLicense(p), reason: deployingReason(p.reason, deployment.note) }
      : {
          ...withoutLicense(p),
          decision: 'kept',
          alias: null,
          reason: `not promoted: the model could not be deployed (${deployment.why}; the rule held: ${p.reason})`,
        };
  await record(tx, promotion, { undecidedOnly: true, deploying: deployment.state === 'deploying' });
  return promotion;
}

export type HandPromotion =
  | { outcome: 'promoted' | 'deploying' | 'unchanged' }
  | { outcome: 'not_available' }
  | { outcome: 'refused'; why: string };

/**
 * A promotion by hand, whatever was decided before, in the caller's transaction (the version row locked
 * here): the model activated and the alias pointed at it now, or, for a model that must be deployed
 * first, its deployment started and the alias moved when it serves (unless it was switched meanwhile).
 * `unchanged`: it was already promoted to this model (a repeated call records nothing).
 */
export async function promoteVersionByHand(
  tx: Executor,
  input: {
    profileId: string;
    version: number;
    fineTune: FineTuneRef;
    alias: string | null;
    actor: string;
    hosting: PromotionHosting;
  },
): Promise<HandPromotion> {
  const { fineTune, alias } = input;
  const locked = await lockVersionPromotion(tx, input.profileId, input.version);
  const before = locked?.promotion ?? null;
  const again = before?.decision === 'promoted' && before.fineTuneId === fineTune.id;
  const deployment = await deployForPromotion(tx, fineTune, input.hosting);
  if (deployment.state === 'refused') return { outcome: 'refused', why: deployment.why };
  const policy = before?.actor.startsWith('policy:') ? ` (the policy had decided: ${before.reason})` : '';
  const promotion: NewPromotion = {
    profileId: input.profileId,
    version: input.version,
    decision: 'promoted',
    rule: null,
    reason: `promoted by hand${policy}`,
    actor: input.actor,
    alias,
    fineTuneId: fineTune.id,
    championFineTuneId: before?.championFineTuneId ?? null,
  };
  if (deployment.state === 'deploying') {
    if (again && locked?.deploying) return { outcome: 'unchanged' };
    // The alias moves when the model serves, only if it still serves what it serves now.
    const current = alias
      ? await findAliasTarget(tx, { licenseId: fineTune.licenseId, name: alias })
      : undefined;
    await record(
      tx,
      {
        ...promotion,
        reason: deployingReason(promotion.reason, deployment.note),
        championFineTuneId: current?.fineTuneId ?? null,
      },
      { undecidedOnly: false, deploying: true },
    );
    return { outcome: 'deploying' };
  }
  const result = await promoteFineTune(tx, {
    licenseId: fineTune.licenseId,
    fineTuneId: fineTune.id,
    alias,
    actor: input.actor,
  });
  if (result.outcome !== 'promoted') return { outcome: 'not_available' };
  const switched = result.alias?.outcome === 'switched' ? result.alias.change : undefined;
  if (!switched && again && !locked?.deploying) return { outcome: 'unchanged' };
  await record(
    tx,
    { ...promotion, championFineTuneId: switched ? switched.fromFineTuneId : promotion.championFineTuneId },
    { undecidedOnly: false },
  );
  return { outcome: 'promoted' };
}

/** A version waiting for this model's deployment: the model serves, so its promotion is carried out now. */
export async function versionDeploymentServes(
  tx: Executor,
  fineTune: Pick<FineTuneRecord, 'id'>,
): Promise<void> {
  const waiting = await lockDeployingVersion(tx, fineTune.id);
  if (!waiting) return;
  await carryOut(
    tx,
    { ...waiting, reason: waiting.reason.replace(new RegExp(`${WHEN_SERVES}$`), ': it serves') },
    { undecidedOnly: false, meanwhile: 'while the model was deploying' },
  );
}

/** A version waiting for this model's deployment, which ended before it served: `kept`, the alias unchanged. */
export async function versionDeploymentEnded(tx: Executor, fineTuneId: string, why: string): Promise<void> {
  const waiting = await lockDeployingVersion(tx, fineTuneId);
  if (!waiting) return;
  await recordVersionPromotion(tx, {
    ...withoutLicense(waiting),
    decision: 'kept',
    alias: null,
    reason: `not promoted: the model's deployment ended before it served (${why}); the alias stays where it was`,
    undecidedOnly: false,
  });
}
