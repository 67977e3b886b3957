import { findBaseModel, hostingFeeOf, lifecycleOf } from '@tuneline/dataset';
import {
  aliasesOfFineTunes,
  type Executor,
  type FineTuneRecord,
  findLiveDeployment,
  getFineTune,
  latestDeployments,
  listActiveFineTunes,
  pointAlias,
  requestUndeploy,
  setFineTuneActive,
  startDeployment,
} from '@tuneline/db';
import { getBalance } from '@tuneline/ledger';
import { azureDeploymentName, servesOnlyWhenDeployed } from '@tuneline/provider';
import type { FastifyReply } from 'fastify';
import type { ApiDeps } from '../app.ts';
import { HttpError, notFound, type RouteTable } from '../http.ts';
import { ownFineTune } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { activeModelsSchema, fineTuneSchema, idParams } from '../schemas.ts';
import { fineTuneView, type ServingContext } from '../views.ts';

/**
 * Offering a model for use, and withdrawing it (issue 20.1 for deployments). A model its provider
 * serves at once (OpenAI, Together, the simulator) is switched on and off in one statement. On Azure a
 * fine-tune serves nothing until it is deployed, and a deployment costs an hourly fee until deleted:
 * activation records a deployment (`deploying`) and answers 202, the poller creates it at Azure and
 * makes the model active once provisioning succeeded; deactivation stops serving at once and the poller
 * deletes the deployment.
 */

/**
 * Each row's latest deployment (one statement), as `fineTuneView`'s serving context. Pass the snapshot
 * the rows were read on (`inSnapshot`), so a model and its deployment are shown as of one moment.
 */
export async function servingContexts(
  deps: ApiDeps,
  rows: readonly Pick<FineTuneRecord, 'id'>[],
  db: Executor = deps.db,
): Promise<(id: string) => ServingContext> {
  const latest = await latestDeployments(
    db,
    rows.map((r) => r.id),
  );
  return (id) => ({ deployment: latest.get(id), defaultProvider: deps.deployments.defaultProvider });
}

/** One fine-tune's view with its latest deployment. */
export async function servedView(deps: ApiDeps, row: FineTuneRecord) {
  const serving = await servingContexts(deps, [row]);
  return fineTuneView(row, undefined, deps.catalogue, serving(row.id));
}

const unavailable = (row: FineTuneRecord | undefined) =>
  new HttpError(
    409,
    row?.discardedAt
      ? 'model is discarded'
      : `model is not available for activation (fine-tune is ${row?.status ?? 'unknown'}${row?.settledAt ? '' : ', not settled'})`,
  );

async function activateDeployed(deps: ApiDeps, licenseId: string, row: FineTuneRecord, reply: FastifyReply) {
  const provider = row.provider ?? deps.deployments.defaultProvider;
  if (deps.deployments.problem) throw new HttpError(503, deps.deployments.problem);
  if (!row.available || row.discardedAt) throw unavailable(row);
  const fee = hostingFeeOf(findBaseModel(row.baseModel, deps.catalogue), provider);
  if (fee === undefined)
    throw new HttpError(
      409,
      `the model catalogue has no hosting fee for "${row.baseModel}" at ${provider} (providers.${provider}.hostingCreditsPerHour): its deployment could not be metered`,
    );
  const latest = (await latestDeployments(deps.db, [row.id])).get(row.id);
  if (!latest || latest.endedAt) {
    // A new deployment costs its fee every started hour: refuse one the license cannot pay an hour of.
    const balance = await getBalance(deps.db, licenseId);
    if (balance.overageBlocked || balance.available < fee)
      throw new HttpError(
        402,
        `activating deploys the model at ${provider}, which costs ${fee} credits per started hour; available: ${balance.available}${balance.overageBlocked ? ' (blocked by an earlier overage)' : ''}`,
        undefined,
        undefined,
        { code: 'insufficient_credits' },
      );
  }
  const started = await startDeployment(deps.db, {
    fineTuneId: row.id,
    licenseId,
    provider,
    name: azureDeploymentName(row.id),
    creditsPerHour: fee,
    now: deps.clock.now(),
  });
  if (started.outcome === 'unavailable') throw unavailable(started.fineTune);
  if (started.outcome === 'deleting')
    throw new HttpError(
      409,
      'its deployment is being deleted (deactivation); activate it again once it is deleted',
    );
  if (started.outcome === 'started') await deps.flushOutbox();
  if (!started.fineTune.active) reply.code(202);
  return fineTuneView(started.fineTune, undefined, deps.catalogue, {
    deployment: started.deployment,
    defaultProvider: deps.deployments.defaultProvider,
  });
}

async function activateServed(deps: ApiDeps, licenseId: string, id: string) {
  const updated = await setFineTuneActive(deps.db, { id, licenseId, active: true });
  if (!updated) throw unavailable(await getFineTune(deps.db, id));
  // The request's alias wish (job.alias): pointed at the model the first time it is activated.
  if (updated.alias)
    await pointAlias(deps.db, {
      licenseId,
      name: updated.alias,
      fineTuneId: updated.id,
      actor: 'system',
      firstTimeOnly: true,
    });
  return servedView(deps, updated);
}

async function deactivate(deps: ApiDeps, licenseId: string, row: FineTuneRecord) {
  if (!servesOnlyWhenDeployed(row.provider, deps.deployments.defaultProvider)) {
    const updated = await setFineTuneActive(deps.db, { id: row.id, licenseId, active: false });
    if (!updated) throw unavailable(row);
    return servedView(deps, updated);
  }
  // Nothing deployed and nothing to offer: the same answer as for a model served without deployment.
  if (!row.available && !(await findLiveDeployment(deps.db, row.id))) throw unavailable(row);
  const { fineTune, deployment } = await requestUndeploy(deps.db, {
    fineTuneId: row.id,
    licenseId,
    reason: 'deactivated',
  });
  if (!fineTune) throw notFound('fine-tune');
  await deps.flushOutbox();
  if (deployment)
    return fineTuneView(fineTune, undefined, deps.catalogue, { deployment, ...deps.deployments });
  return servedView(deps, fineTune);
}

export function registerActivationRoutes(table: RouteTable, deps: ApiDeps): void {
  const common = { 400: 'invalid request', 404: 'no such fine-tune for this license' };
  const routes = routeGroup(table, 'license', 'activation');
  routes.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/activate',
      summary:
        'Offer an available fine-tuned model for use (only settled, available models). On Azure this deploys it first: 202 with `activation: deploying` until the deployment serves (then `active`), at the hosting fee per started hour; activating again is the same deployment. The first time the model serves, the alias its request named (job.alias) is pointed at it',
      params: idParams,
      responses: {
        200: { description: 'the model is active (unchanged if it already was)', schema: fineTuneSchema },
        202: {
          description:
            'its deployment is under way (`activation: deploying`); the model serves once it is `active`',
          schema: fineTuneSchema,
        },
        ...common,
        402: 'not enough credits for an hour of hosting',
        409: 'the model is not available (not trained, not settled, discarded), its deployment is being deleted, or the catalogue has no hosting fee for it',
        503: 'deployments at its provider are not configured here',
      },
    },
    async ({ licenseId, params, reply }) => {
      const row = await ownFineTune(deps, licenseId, params.id);
      if (servesOnlyWhenDeployed(row.provider, deps.deployments.defaultProvider))
        return activateDeployed(deps, licenseId, row, reply);
      return activateServed(deps, licenseId, row.id);
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/deactivate',
      summary:
        'Stop offering a fine-tuned model. A deployed model (Azure) stops serving at once and its deployment is deleted (`activation: deactivating` until it is), which ends its hosting fee',
      params: idParams,
      responses: {
        200: {
          description: 'the fine-tune after the change (unchanged if it already was)',
          schema: fineTuneSchema,
        },
        ...common,
        409: 'the model is not available (not trained, or not yet settled)',
      },
    },
    async ({ licenseId, params }) =>
      deactivate(deps, licenseId, await ownFineTune(deps, licenseId, params.id)),
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/models/active',
      summary: 'The active fine-tuned models of the license: what a model configurator offers',
      responses: { 200: { description: 'active models', schema: activeModelsSchema } },
    },
    async ({ licenseId }) => {
      const rows = await listActiveFineTunes(deps.db, licenseId);
      const aliases = await aliasesOfFineTunes(
        deps.db,
        licenseId,
        rows.map((r) => r.id),
      );
      return {
        data: rows.map((r) => ({
          model: r.fineTunedModel as string,
          fineTuneId: r.id,
          baseModel: r.baseModel,
          suffix: r.suffix,
          aliases: aliases.get(r.id) ?? [],
          lifecycle: lifecycleOf(findBaseModel(r.baseModel, deps.catalogue), r.provider),
        })),
      };
    },
  );
}
