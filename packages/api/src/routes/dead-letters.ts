import { isQueueName, QUEUE_NAMES } from '@tuneline/contracts';
import { type DeadLetterRecord, findDeadLetter, listDeadLetters, reopenDeadLetter } from '@tuneline/db';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { HttpError, orNotFound, type RouteTable } from '../http.ts';
import { pageSizeSchema } from '../listing.ts';
import { routeGroup } from '../route-group.ts';
import { idParams } from '../schemas.ts';

/**
 * Dead letters (issue 15.5): rows whose job kept failing after the recovery sweep's cap
 * (RECOVERY_MAX_RETRIES). A license lists its own; ops list them all and put one back in its queue.
 */

export const deadLetterSchema = z
  .object({
    id: z.uuid(),
    queue: z.string(),
    jobId: z.string(),
    subject: z.object({
      kind: z.enum(['request', 'dataset', 'fine_tune', 'notification']),
      id: z.string().describe("the dataset, fine-tune or notification id; a request's own requestId"),
    }),
    licenseId: z.string().nullable(),
    status: z.enum(['retrying', 'dead_lettered']),
    reason: z.string().nullable().describe("the job's last failure"),
    recoveries: z.int().describe('times the recovery sweep re-enqueued the failed job before giving up'),
    deadLetteredAt: z.string().nullable(),
    adminRetries: z.int(),
    retriedAt: z.string().nullable(),
  })
  .meta({ id: 'DeadLetter' });

const deadLetterListSchema = z.object({ data: z.array(deadLetterSchema) }).meta({ id: 'DeadLetterList' });

const licenseQuery = z.object({ limit: pageSizeSchema });
const adminQuery = z.object({
  licenseId: z.string().min(1).max(64).optional(),
  queue: z.enum(QUEUE_NAMES as [string, ...string[]], `must be one of ${QUEUE_NAMES.join(', ')}`).optional(),
  limit: pageSizeSchema,
});

export function deadLetterView(d: DeadLetterRecord) {
  return {
    id: d.id,
    queue: d.queue,
    jobId: d.jobId,
    subject: { kind: d.subjectKind, id: d.subjectId },
    licenseId: d.licenseId,
    status: d.status,
    reason: d.reason,
    recoveries: d.recoveries,
    deadLetteredAt: d.deadLetteredAt?.toISOString() ?? null,
    adminRetries: d.adminRetries,
    retriedAt: d.retriedAt?.toISOString() ?? null,
  };
}

const E400 = 'invalid request';

export function registerDeadLetterRoutes(table: RouteTable, deps: ApiDeps): void {
  routeGroup(table, 'license', 'dead-letters').add(
    {
      method: 'GET',
      url: '/v1/dead-letters',
      summary:
        "The license's dead-lettered rows: work whose job kept failing after the recovery cap, with the last failure",
      query: licenseQuery,
      responses: {
        200: { description: 'most recent first', schema: deadLetterListSchema },
        400: E400,
      },
    },
    async ({ licenseId, query }) => ({
      data: (await listDeadLetters(deps.db, { licenseId, limit: query.limit })).map(deadLetterView),
    }),
  );

  const admin = routeGroup(table, 'admin', 'admin');
  admin.add(
    {
      method: 'GET',
      url: '/v1/admin/dead-letters',
      summary: 'Every dead-lettered row (optionally of one license or queue)',
      query: adminQuery,
      responses: {
        200: { description: 'most recent first', schema: deadLetterListSchema },
        400: E400,
      },
    },
    async ({ query }) => ({
      data: (
        await listDeadLetters(deps.db, {
          ...(query.licenseId ? { licenseId: query.licenseId } : {}),
          ...(query.queue ? { queue: query.queue } : {}),
          limit: query.limit,
        })
      ).map(deadLetterView),
    }),
  );

  admin.add(
    {
      method: 'POST',
      url: '/v1/admin/dead-letters/:id/retry',
      summary:
        'Put a dead-lettered row back in its queue with fresh attempts; the recovery sweep counts its failures afresh',
      params: idParams,
      responses: {
        202: { description: 're-queued', schema: deadLetterSchema },
        400: E400,
        404: 'no such dead letter',
        409: 'not dead-lettered (already retried)',
      },
    },
    async ({ params }) => {
      const reopened = await reopenDeadLetter(deps.db, params.id);
      if (!reopened) {
        const found = orNotFound(await findDeadLetter(deps.db, params.id), 'dead letter');
        throw new HttpError(409, `not dead-lettered (status ${found.status}): nothing to retry`);
      }
      if (!isQueueName(reopened.queue)) throw new HttpError(409, `unknown queue "${reopened.queue}"`);
      // Should Redis refuse, the row is no longer dead-lettered: the next recovery sweep queues it.
      await deps.requeue(reopened.queue, reopened.jobId, reopened.payload).catch(() => undefined);
      return deadLetterView(reopened);
    },
  );
}
