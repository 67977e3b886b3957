import { discardFineTune, findLiveDeployment, getFineTune, isTerminalStatus } from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, HttpError, notFound, type RouteTable } from '../http.ts';
import { fineTuneSchema, idParams } from '../schemas.ts';
import { servedView } from './activation.ts';

/** Deletes a fine-tuned model at its provider (where the provider allows it). */
export type ModelDeleter = (fineTune: {
  provider: string | null;
  model: string;
  providerJobId: string | null;
}) => Promise<void>;

export function registerDiscardRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/discard',
      auth: 'license',
      tag: 'fine-tunes',
      summary:
        'Discard a finished fine-tune: its model is deleted at the provider where allowed; the row stays (ledger, report), marked discarded',
      params: idParams,
      responses: {
        200: { description: 'discarded (discarding twice is harmless)', schema: fineTuneSchema },
        401: { description: 'missing or invalid API key', schema: errorSchema },
        404: { description: 'no such fine-tune for this license', schema: errorSchema },
        409: {
          description: 'the fine-tune has not finished, or its deployment still exists (deactivate first)',
          schema: errorSchema,
        },
        502: { description: 'the provider refused to delete the model', schema: errorSchema },
      },
    },
    async ({ caller, params }) => {
      const licenseId = licenseOf(caller);
      const row = await getFineTune(deps.db, params.id);
      if (!row || row.licenseId !== licenseId) throw notFound('fine-tune');
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
      const discarded = await discardFineTune(deps.db, licenseId, row.id);
      if (!discarded) throw notFound('fine-tune');
      return servedView(deps, discarded);
    },
  );
}
