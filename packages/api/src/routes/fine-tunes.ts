import {
  findOpenDeadLettersBySubject,
  inSnapshot,
  listCheckpoints,
  listProviderEvents,
  pageFineTunes,
  requestCancel,
} from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { HttpError, notFound, type RouteTable } from '../http.ts';
import { FINE_TUNE_STATUSES, listQuerySchema, pageRequest, pageView } from '../listing.ts';
import { ownFineTune, ownFineTuneWithDeployment } from '../owned.ts';
import { routeGroup } from '../route-group.ts';
import { fineTuneDetailSchema, fineTuneListSchema, fineTuneSchema, idParams } from '../schemas.ts';
import { fineTuneView } from '../views.ts';
import { servedView, servingContexts } from './activation.ts';

const E400 = 'invalid request';
const E404 = 'no such fine-tune for this license';
const fineTuneListQuery = listQuerySchema(FINE_TUNE_STATUSES);

export function registerFineTuneRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'license', 'fine-tunes');
  routes.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes',
      summary:
        'The fine-tunes of the license: status, base model, hyperparameters, tokens, credits, model name, dates. Newest first, paged by cursor, filtered by status, base model, creation time or requestId',
      query: fineTuneListQuery,
      responses: {
        200: { description: 'one page, newest first', schema: fineTuneListSchema },
        400: 'a bad parameter, named in `fields`',
      },
    },
    async ({ licenseId, query }) => {
      const { page, serving } = await inSnapshot(deps.db, async (tx) => {
        const page = await pageFineTunes(tx, licenseId, pageRequest(query));
        return { page, serving: await servingContexts(deps, page.rows, tx) };
      });
      return pageView(page, (r) => fineTuneView(r, r.deadLetter, deps.catalogue, serving(r.id)));
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id',
      summary: 'One fine-tune with its provider events and checkpoints (training loss per step)',
      params: idParams,
      responses: {
        200: { description: 'the fine-tune', schema: fineTuneDetailSchema },
        400: E400,
        404: E404,
      },
    },
    async ({ licenseId, params }) => {
      // The row and its deployment from one snapshot: the sweep ends a deployment and the model's
      // activation together, and the view shows them together (never `active` beside `deleted`).
      const { fineTune: row, deployment } = await ownFineTuneWithDeployment(deps, licenseId, params.id);
      const [events, checkpoints] = await Promise.all([
        listProviderEvents(deps.db, row.id),
        listCheckpoints(deps.db, row.id),
      ]);
      const dead = await findOpenDeadLettersBySubject(deps.db, [row.id]);
      const serving = { deployment, defaultProvider: deps.deployments.defaultProvider };
      return {
        ...fineTuneView(row, dead.get(row.id), deps.catalogue, serving),
        events: events.map((e) => ({
          id: e.id,
          createdAt: e.createdAt.toISOString(),
          level: e.level,
          message: e.message,
          type: e.type,
        })),
        checkpoints: checkpoints.map((c) => ({
          id: c.id,
          step: c.step,
          model: c.fineTunedModelCheckpoint,
          metrics: (c.metrics ?? {}) as Record<string, unknown>,
          createdAt: c.createdAt.toISOString(),
        })),
      };
    },
  );

  routes.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/cancel',
      summary: 'Ask for a running fine-tune to be cancelled (asking twice is harmless)',
      params: idParams,
      responses: {
        202: { description: 'cancellation requested', schema: fineTuneSchema },
        400: E400,
        404: E404,
        409: 'the fine-tune has already finished',
      },
    },
    async ({ licenseId, params }) => {
      await ownFineTune(deps, licenseId, params.id);
      const result = await requestCancel(deps.db, params.id);
      if (!result.ok) {
        if (result.reason === 'not_found') throw notFound('fine-tune');
        throw new HttpError(409, `fine-tune already finished (${result.fineTune?.status ?? 'unknown'})`);
      }
      await deps.flushOutbox();
      return servedView(deps, result.fineTune);
    },
  );
}
