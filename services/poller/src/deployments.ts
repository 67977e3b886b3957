import { type Clock, type MessageOf, systemClock } from '@tuneline/contracts';
import {
  continueDeploymentFollow,
  type DeploymentRecord,
  deploymentFollowMessage,
  endDeployment,
  getDeployment,
  listActiveDeployments,
  listDeploymentsInFlight,
  listHostingDue,
  markDeploymentActive,
  pointAlias,
} from '@tuneline/db';
import { chargeHostingHours } from '@tuneline/ledger';
import { type AzureDeployment, ProviderError } from '@tuneline/provider';
import {
  defineStage,
  type JobContext,
  type Logger,
  PermanentError,
  type StageDeps,
  stageFailure,
} from '@tuneline/runtime';

/**
 * Deployments of fine-tuned models (issue 20.1), in the poller because following a provider's
 * long-running state is what it does: a deployment provisions for minutes at Azure the way a job trains
 * for hours, so it is followed the same way, by a chain of delayed links (never a sleeping worker), with
 * its recovery re-adding the current link after Redis lost it; and Azure's idle deletion is noticed by
 * reading the provider's state, as polls do. The poller also holds the provider's credentials.
 *
 * Hosting hours are charged by the same sweep: a deployment's hours end where the sweep finds it gone,
 * so ending it and charging its last hours belong together.
 */

/** What the poller needs of a provider's deployment management (`AzureDeployments`). */
export interface DeploymentManager {
  start(name: string, model: string): Promise<void>;
  get(name: string): Promise<AzureDeployment | null>;
  remove(name: string): Promise<void>;
}

export interface DeploymentDeps extends StageDeps {
  /** The provider's deployments (Azure's ARM); absent: not configured here, `deploymentsProblem` says why. */
  deployments?: DeploymentManager;
  deploymentsProblem?: string;
  /** Hosting hours and deployment times are judged by it (issue 21.5); the system clock by default. */
  clock?: Clock;
  /** Gap between two reads of a deployment that is provisioning (default 10 s). */
  deploymentPollMs?: number;
  /** A deployment still provisioning after this long is deleted and failed (default 1 h). */
  deploymentTimeoutMs?: number;
}

/** The reason a deployment the provider no longer has ends with (what the model view and e-mail say). */
export const DEPLOYMENT_GONE_REASON =
  'the deployment no longer exists at Azure (Azure deletes a fine-tuned deployment after 15 days without calls); activate the model again to serve it';

const DEACTIVATED_REASON = 'deactivated';

function manager(deps: DeploymentDeps): DeploymentManager {
  if (!deps.deployments)
    throw new Error(deps.deploymentsProblem ?? 'deployments are not configured in this poller');
  return deps.deployments;
}

/** Provider answers that say this deployment cannot be made (quota, a model the account lacks). */
const refusal = (err: unknown) =>
  err instanceof ProviderError && (err.kind === 'rejected' || err.kind === 'not_found');

/** Stage of the poller: consumes `model-deployment`, one link of a deployment's follow chain. */
export const modelDeploymentStage = defineStage<'model-deployment', DeploymentDeps>({
  queue: 'model-deployment',
  async handle(message, ctx, deps) {
    try {
      await followDeployment(message, ctx, deps);
    } catch (err) {
      throw stageFailure(err);
    }
  },
  /** Deployments being created or deleted: their current link again (collapsing with one in Redis). */
  async recover({ db }) {
    return (await listDeploymentsInFlight(db)).map((d) => deploymentFollowMessage(d));
  },
});

async function followDeployment(
  message: MessageOf<'model-deployment'>,
  ctx: JobContext,
  deps: DeploymentDeps,
): Promise<void> {
  const d = await getDeployment(deps.db, message.deploymentId);
  if (!d) throw new PermanentError(`deployment ${message.deploymentId} does not exist`);
  // Ended, or an older link than the row's current one (deactivation queued a newer link): nothing to do.
  if (d.endedAt || message.step !== d.followSteps) return;
  const log = ctx.log.child({ deploymentId: d.id, deployment: d.name, fineTuneId: d.fineTuneId });
  if (d.state === 'deploying') await provision(d, deps, log);
  else if (d.state === 'deleting') await deleteAtProvider(d, deps, log);
}

/** Create the deployment if the provider does not have it, and follow provisioning to its end. */
async function provision(d: DeploymentRecord, deps: DeploymentDeps, log: Logger): Promise<void> {
  const now = (deps.clock ?? systemClock).now();
  if (!deps.deployments) {
    await fail(d, deps, deps.deploymentsProblem ?? 'deployments are not configured', log);
    return;
  }
  const at = await deps.deployments.get(d.name);
  if (at?.state === 'active') {
    const done = await markDeploymentActive(deps.db, d.id, now);
    // The request's alias wish (job.alias), pointed the first time the model serves.
    const fineTune = done?.fineTune;
    if (fineTune?.alias)
      await pointAlias(deps.db, {
        licenseId: fineTune.licenseId,
        name: fineTune.alias,
        fineTuneId: fineTune.id,
        actor: 'system',
        firstTimeOnly: true,
      });
    if (done) log.info('deployment serves: model active');
    return;
  }
  if (at?.state === 'failed') {
    await fail(
      d,
      deps,
      `the provider could not deploy the model (provisioning state ${at.provisioningState})`,
      log,
    );
    return;
  }
  const timeoutMs = deps.deploymentTimeoutMs ?? 3_600_000;
  if (now.getTime() - d.createdAt.getTime() > timeoutMs) {
    await fail(
      d,
      deps,
      `the deployment was still provisioning after ${Math.round(timeoutMs / 60_000)} minutes`,
      log,
    );
    return;
  }
  if (at === null) {
    try {
      await deps.deployments.start(d.name, d.model);
      log.info({ model: d.model }, 'deployment requested at the provider');
    } catch (err) {
      if (!refusal(err)) throw err;
      await fail(d, deps, `the provider refused the deployment: ${(err as Error).message}`, log);
      return;
    }
  }
  await continueDeploymentFollow(deps.db, {
    id: d.id,
    step: d.followSteps,
    state: 'deploying',
    delayMs: deps.deploymentPollMs ?? 10_000,
  });
}

/** A deployment that will not serve: removed at the provider (it may linger as Failed), then failed. */
async function fail(d: DeploymentRecord, deps: DeploymentDeps, reason: string, log: Logger): Promise<void> {
  await deps.deployments?.remove(d.name);
  const now = (deps.clock ?? systemClock).now();
  const ended = await endDeployment(deps.db, { id: d.id, from: ['deploying'], state: 'failed', reason, now });
  if (ended) log.warn({ reason }, 'deployment failed: model stays inactive');
}

/** Deactivation: delete at the provider (gone already is fine), then the hosting hours end. */
async function deleteAtProvider(d: DeploymentRecord, deps: DeploymentDeps, log: Logger): Promise<void> {
  await manager(deps).remove(d.name);
  const now = (deps.clock ?? systemClock).now();
  const ended = await endDeployment(deps.db, {
    id: d.id,
    from: ['deleting'],
    state: 'deleted',
    reason: DEACTIVATED_REASON,
    now,
  });
  if (ended) log.info('deployment deleted');
}

export interface DeploymentSweepResult {
  checked: number;
  /** Deployments found gone (or failed) at the provider and ended now. */
  ended: number;
  /** Hosting hours charged now, and their credits. */
  hours: number;
  credits: bigint;
}

/**
 * One sweep: every active deployment is read at the provider, and one it no longer has (Azure deletes
 * a fine-tuned deployment idle for 15 days) ends `deleted` with the reason, its model inactive, and one
 * e-mail to the fine-tune's recipients; then every started hosting hour not charged yet is charged.
 * Run twice, or on two replicas at once, it ends each deployment once (state check) and charges each
 * hour once (ledger key).
 */
export async function runDeploymentSweep(deps: DeploymentDeps, log: Logger): Promise<DeploymentSweepResult> {
  const clock = deps.clock ?? systemClock;
  const result: DeploymentSweepResult = { checked: 0, ended: 0, hours: 0, credits: 0n };
  if (deps.deployments) {
    for (const d of await listActiveDeployments(deps.db, 'azure')) {
      result.checked++;
      let at: AzureDeployment | null;
      try {
        at = await deps.deployments.get(d.name);
      } catch (err) {
        // One deployment's trouble must not stop the sweep (a rate limit stops it: next sweep).
        if (err instanceof ProviderError && err.kind === 'rate_limited') throw err;
        log.warn({ deploymentId: d.id, err: String(err) }, 'deployment sweep could not read a deployment');
        continue;
      }
      if (at && at.state !== 'failed') continue;
      const reason = at
        ? `the provider reports the deployment ${at.provisioningState}: it serves nothing; activate the model again`
        : DEPLOYMENT_GONE_REASON;
      const ended = await endDeployment(deps.db, {
        id: d.id,
        from: ['active'],
        state: at ? 'failed' : 'deleted',
        reason,
        now: clock.now(),
        notify: true,
      });
      if (ended) {
        result.ended++;
        log.warn(
          { deploymentId: d.id, fineTuneId: d.fineTuneId, reason },
          'deployment gone at the provider: model inactive',
        );
      }
    }
  }
  for (const d of await listHostingDue(deps.db)) {
    const charge = await chargeHostingHours(deps.db, d, clock.now());
    result.hours += charge.charged;
    result.credits += charge.credits;
  }
  return result;
}

/**
 * Stage of the poller: consumes `deployment-sweep`, queued by a job scheduler every poller replica
 * upserts (main.ts; one scheduler results, and a duplicated or late sweep is harmless).
 */
export const deploymentSweepStage = defineStage<'deployment-sweep', DeploymentDeps>({
  queue: 'deployment-sweep',
  async handle(_message, ctx, deps) {
    try {
      const result = await runDeploymentSweep(deps, ctx.log);
      ctx.log.info({ ...result, credits: result.credits.toString() }, 'deployment sweep');
    } catch (err) {
      throw stageFailure(err);
    }
  },
});
