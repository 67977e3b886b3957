import {
  type FineTuneRecord,
  findOpenDeadLettersBySubject,
  getFineTune,
  listCheckpoints,
  listProviderEvents,
  pageFineTunes,
  requestCancel,
} from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, HttpError, notFound, type RouteTable } from '../http.ts';
import { encodeCursor, FINE_TUNE_STATUSES, listQuerySchema, pageRequest } from '../listing.ts';
import { fineTuneDetailSchema, fineTuneListSchema, fineTuneSchema, idParams } from '../schemas.ts';
import { fineTuneView } from '../views.ts';
import { servedView, servingContexts } from './activation.ts';

const E400 = { description: 'invalid request', schema: errorSchema };
const E401 = { description: 'missing or invalid API key', schema: errorSchema };
const E404 = { description: 'no such fine-tune for this license', schema: errorSchema };
const fineTuneListQuery = listQuerySchema(FINE_TUNE_STATUSES);

async function ownFineTune(deps: ApiDeps, licenseId: string, id: string): Promise<FineTuneRecord> {
  const row = await getFineTune(deps.db, id);
  if (!row || row.licenseId !== licenseId) throw notFound('fine-tune');
  return row;
}

export function registerFineTuneRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes',
      auth: 'license',
      tag: 'fine-tunes',
      summary:
        'The fine-tunes of the license: status, base model, hyperparameters, tokens, credits, model name, dates. Newest first, paged by cursor, filtered by status, base model, creation time or requestId',
      query: fineTuneListQuery,
      responses: {
        200: { description: 'one page, newest first', schema: fineTuneListSchema },
        400: { description: 'a bad parameter, named in `fields`', schema: errorSchema },
        401: E401,
      },
    },
    async ({ caller, query }) => {
      const page = await pageFineTunes(deps.db, licenseOf(caller), pageRequest(query));
      const serving = await servingContexts(deps, page.rows);
      return {
        data: page.rows.map((r) => fineTuneView(r, r.deadLetter, deps.catalogue, serving(r.id))),
        nextCursor: page.next ? encodeCursor(page.next) : null,
      };
    },
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/fine-tunes/:id',
      auth: 'license',
      tag: 'fine-tunes',
      summary: 'One fine-tune with its provider events and checkpoints (training loss per step)',
      params: idParams,
      responses: {
        200: { description: 'the fine-tune', schema: fineTuneDetailSchema },
        400: E400,
        401: E401,
        404: E404,
      },
    },
    async ({ caller, params }) => {
      const row = await ownFineTune(deps, licenseOf(caller), params.id);
      const [events, checkpoints] = await Promise.all([
        listProviderEvents(deps.db, row.id),
        listCheckpoints(deps.db, row.id),
      ]);
      const dead = await findOpenDeadLettersBySubject(deps.db, [row.id]);
      const serving = await servingContexts(deps, [row]);
      return {
        ...fineTuneView(row, dead.get(row.id), deps.catalogue, serving(row.id)),
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

  table.add(
    {
      method: 'POST',
      url: '/v1/fine-tunes/:id/cancel',
      auth: 'license',
      tag: 'fine-tunes',
      summary: 'Ask for a running fine-tune to be cancelled (asking twice is harmless)',
      params: idParams,
      responses: {
        202: { description: 'cancellation requested', schema: fineTuneSchema },
        400: E400,
        401: E401,
        404: E404,
        409: { description: 'the fine-tune has already finished', schema: errorSchema },
      },
    },
    async ({ caller, params }) => {
      await ownFineTune(deps, licenseOf(caller), params.id);
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
