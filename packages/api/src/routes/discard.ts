import { discardFineTune, findLiveDeployment, isTerminalStatus } from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { HttpError, orNotFound, type RouteTable } from '../http.ts';
import { ownFineTune } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { fineTuneSchema, idParams } from '../schemas.ts';
import { servedView } from './activation.ts';

/** Deletes a fine-tuned model at its provider (where the provider allows it). */
export type ModelDeleter = (fineTune: {
  provider: string | null;
  model: string;
  providerJobId: string | null;
}) => Promise<void>;

export function registerDiscardRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'fine-tunes').add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/discard',
      summary:
        'Discard a finished fine-tune: its model is deleted at the provider where allowed; the row stays (ledger, report), marked discarded',
      params: idParams,
      responses: {
        200: { description: 'discarded (discarding twice is harmless)', schema: fineTuneSchema },
        404: 'no such fine-tune for this license',
        409: 'the fine-tune has not finished, or its deployment still exists (deactivate first)',
        502: 'the provider refused to delete the model',
      },
    },
    async ({ licenseId, params }) => {
      const row = await ownFineTune(deps, licenseId, params.id);
      if (!isTerminalStatus(row.status))
        throw new HttpError(409, `fine-tune is ${row.status}: cancel it first`);
      // A deployed model (Azure) keeps costing its hosting fee: its deployment goes first.
      const live = await findLiveDeployment(deps.db, row.id);
      if (live)
        throw new HttpError(
          409,
          `its deployment ${live.name} is ${live.state}: deactivate the model first (which deletes the deployment)`,
        );
      if (row.fineTunedModel && !row.discardedAt && deps.deleteModel) {
        try {
          await deps.deleteModel({
            provider: row.provider,
            model: row.fineTunedModel,
            providerJobId: row.providerJobId,
          });
        } catch (err) {
          throw new HttpError(502, `provider did not delete the model: ${(err as Error).message}`);
        }
      }
      return servedView(deps, orNotFound(await discardFineTune(deps.db, licenseId, row.id), 'fine-tune'));
    },
  );
}
