import { idString } from '@tuneline/contracts';
import { type DatasetIssue, describeIssue } from '@tuneline/dataset';
import {
  type DatasetRecord,
  type DeadLetterRecord,
  type FineTuneRecord,
  findOpenDeadLettersBySubject,
  findRequestOutcome,
  inSnapshot,
  type StoredRequest,
} from '@tuneline/db';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { orNotFound, type RouteTable } from '../http.ts';
import { routeGroup } from '../route-group.ts';
import { datasetSchema, deadLetterSummarySchema, fineTuneSchema } from '../schemas.ts';
import { datasetView, deadLetterSummary, fineTuneView } from '../views.ts';
import { servingContexts } from './activation.ts';

/**
 * `GET /v1/fine-tune-requests/:requestId` (issue 15.7): what became of an upstream request — the stored
 * request, its dataset, the dataset's fine-tunes, and one status and error that sum them up.
 */

const requestIdParams = z.object({ requestId: idString('requestId') });

export const requestOutcomeSchema = z
  .object({
    request: z.object({
      requestId: z.string(),
      status: z.enum(['received', 'built', 'rejected']),
      error: z.string().nullable(),
      correlationId: z.string(),
      createdAt: z.string(),
      updatedAt: z.string(),
      deadLetter: deadLetterSummarySchema,
    }),
    dataset: datasetSchema.nullable().describe('null until the dataset is built'),
    fineTunes: z.array(fineTuneSchema).describe('newest first'),
    stage: z
      .enum(['request', 'dataset', 'fine-tune'])
      .describe('how far the request got: its own row, its dataset, or a fine-tune'),
    status: z
      .string()
      .describe(
        "the status of the furthest row (the newest fine-tune's, else the dataset's, else the request's)",
      ),
    error: z
      .string()
      .nullable()
      .describe(
        "why it stopped, if it did: the request's rejection, the dataset's errors, the newest fine-tune's error, or a dead letter's reason",
      ),
  })
  .meta({ id: 'FineTuneRequestOutcome' });

const datasetErrorText = (d: DatasetRecord): string | null => {
  if (!d.errors.length) return null;
  const shown = d.errors
    .slice(0, 5)
    .map((e) =>
      typeof e === 'object' && e !== null && 'message' in e ? describeIssue(e as DatasetIssue) : String(e),
    );
  return `${shown.join('; ')}${d.errors.length > 5 ? `; and ${d.errors.length - 5} more` : ''}`;
};

/** The one status and error an upstream app reads. */
function summarise(
  request: StoredRequest,
  dataset: DatasetRecord | undefined,
  fineTunes: FineTuneRecord[],
  dead: Map<string, DeadLetterRecord>,
) {
  const newest = fineTunes[0];
  const deadReason = [request.requestId, dataset?.id, newest?.id]
    .map((id) => (id ? dead.get(id) : undefined))
    .find(Boolean)?.reason;
  const dead_ = deadReason ? `dead-lettered: ${deadReason}` : null;
  if (newest)
    return { stage: 'fine-tune' as const, status: newest.status, error: newest.errorMessage ?? dead_ };
  if (dataset) {
    const failed = dataset.status === 'invalid' || dataset.status === 'upload_failed';
    return {
      stage: 'dataset' as const,
      status: dataset.status,
      error: (failed ? datasetErrorText(dataset) : null) ?? dead_,
    };
  }
  return { stage: 'request' as const, status: request.status, error: request.error ?? dead_ };
}

export function registerRequestRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'requests').add(
    {
      method: 'GET',
      url: '/v1/fine-tune-requests/:requestId',
      summary:
        'What became of a fine-tune request (by its requestId): the request, its dataset, its fine-tunes, status and error',
      params: requestIdParams,
      responses: {
        200: { description: 'the request and what it became', schema: requestOutcomeSchema },
        400: 'a bad requestId',
        404: 'no request with this requestId for this license (not received yet, or never sent)',
      },
    },
    async ({ licenseId, params }) => {
      // One snapshot: the request, its dataset, its fine-tunes, their dead letters and deployments.
      const read = await inSnapshot(deps.db, async (tx) => {
        const outcome = await findRequestOutcome(tx, licenseId, params.requestId);
        if (!outcome) return undefined;
        const subjects = [
          outcome.request.requestId,
          ...(outcome.dataset ? [outcome.dataset.id] : []),
          ...outcome.fineTunes.map((f) => f.id),
        ];
        return {
          ...outcome,
          dead: await findOpenDeadLettersBySubject(tx, subjects),
          serving: await servingContexts(deps, outcome.fineTunes, tx),
        };
      });
      const { request, dataset, fineTunes, dead, serving } = orNotFound(read, 'fine-tune request');
      // A request's dead letter is keyed by its requestId; make sure it is this license's.
      const requestDead = dead.get(request.requestId);
      const ownRequestDead = requestDead?.licenseId === request.licenseId ? requestDead : undefined;
      if (!ownRequestDead) dead.delete(request.requestId);
      return {
        request: {
          requestId: request.requestId,
          status: request.status,
          error: request.error,
          correlationId: request.correlationId,
          createdAt: request.createdAt.toISOString(),
          updatedAt: request.updatedAt.toISOString(),
          deadLetter: deadLetterSummary(ownRequestDead),
        },
        dataset: dataset ? datasetView(dataset, dead.get(dataset.id), deps.catalogue) : null,
        fineTunes: fineTunes.map((f) => fineTuneView(f, dead.get(f.id), deps.catalogue, serving(f.id))),
        ...summarise(request, dataset, fineTunes, dead),
      };
    },
  );
}
