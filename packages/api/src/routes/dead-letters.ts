import { isQueueName, QUEUE_NAMES } from '@tuneline/contracts';
import { type DeadLetterRecord, findDeadLetter, listDeadLetters, reopenDeadLetter } from '@tuneline/db';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';
import { licenseOf } from '../auth.ts';
import { errorSchema, HttpError, notFound, type RouteTable } from '../http.ts';

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

const limit = z.coerce
  .number('must be an integer')
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(500, 'must be at most 500')
  .default(100);

const licenseQuery = z.object({ limit });
const adminQuery = z.object({
  licenseId: z.string().min(1).max(64).optional(),
  queue: z.enum(QUEUE_NAMES as [string, ...string[]], `must be one of ${QUEUE_NAMES.join(', ')}`).optional(),
  limit,
});
const idParams = z.object({ id: z.uuid('must be a UUID') });

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

const E400 = { description: 'invalid request', schema: errorSchema };
const E401 = { description: 'missing or invalid API key', schema: errorSchema };

export function registerDeadLetterRoutes(table: RouteTable, deps: ApiDeps): void {
  table.add(
    {
      method: 'GET',
      url: '/v1/dead-letters',
      auth: 'license',
      tag: 'dead-letters',
      summary:
        "The license's dead-lettered rows: work whose job kept failing after the recovery cap, with the last failure",
      query: licenseQuery,
      responses: {
        200: { description: 'most recent first', schema: deadLetterListSchema },
        400: E400,
        401: E401,
      },
    },
    async ({ caller, query }) => ({
      data: (await listDeadLetters(deps.db, { licenseId: licenseOf(caller), limit: query.limit })).map(
        deadLetterView,
      ),
    }),
  );

  table.add(
    {
      method: 'GET',
      url: '/v1/admin/dead-letters',
      auth: 'admin',
      tag: 'admin',
      summary: 'Every dead-lettered row (optionally of one license or queue)',
      query: adminQuery,
      responses: {
        200: { description: 'most recent first', schema: deadLetterListSchema },
        400: E400,
        401: { description: 'missing or non-admin key', schema: errorSchema },
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

  table.add(
    {
      method: 'POST',
      url: '/v1/admin/dead-letters/:id/retry',
      auth: 'admin',
      tag: 'admin',
      summary:
        'Put a dead-lettered row back in its queue with fresh attempts; the recovery sweep counts its failures afresh',
      params: idParams,
      responses: {
        202: { description: 're-queued', schema: deadLetterSchema },
        400: E400,
        401: { description: 'missing or non-admin key', schema: errorSchema },
        404: { description: 'no such dead letter', schema: errorSchema },
        409: { description: 'not dead-lettered (already retried)', schema: errorSchema },
      },
    },
    async ({ params }) => {
      const reopened = await reopenDeadLetter(deps.db, params.id);
      if (!reopened) {
        const found = await findDeadLetter(deps.db, params.id);
        if (!found) throw notFound('dead letter');
        throw new HttpError(409, `not dead-lettered (status ${found.status}): nothing to retry`);
      }
      if (!isQueueName(reopened.queue)) throw new HttpError(409, `unknown queue "${reopened.queue}"`);
      // Should Redis refuse, the row is no longer dead-lettered: the next recovery sweep queues it.
      await deps.requeue(reopened.queue, reopened.jobId, reopened.payload).catch(() => undefined);
      return deadLetterView(reopened);
    },
  );
}
