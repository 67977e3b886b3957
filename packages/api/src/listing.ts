import { AT_PROVIDER, type Page, type PageKey, TERMINAL_STATUSES, WAITING_FOR_TRAINER } from '@tuneline/db';
import { z } from 'zod';
import { HttpError } from './http.ts';

/**
 * Paging and filters of the list endpoints (issue 15.7): `limit`, an opaque `cursor` (the previous
 * page's `nextCursor`), `status` (comma-separated), `baseModel`, `createdFrom` / `createdTo` and
 * `requestId`. Each bad parameter answers 400 naming it.
 */

export const DATASET_STATUSES = [
  'building',
  'ready',
  'invalid',
  'uploading',
  'uploaded',
  'upload_failed',
] as const;
export const FINE_TUNE_STATUSES = [...WAITING_FOR_TRAINER, ...AT_PROVIDER, ...TERMINAL_STATUSES] as const;

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

/** `cursor` is base64url JSON `{v, at, id}`; clients pass it back untouched. */
export function encodeCursor(key: PageKey): string {
  return Buffer.from(JSON.stringify({ v: 1, at: key.at, id: key.id })).toString('base64url');
}

const cursorSchema = z.object({
  v: z.literal(1),
  // As Postgres prints a timestamptz: `2026-12-03 16:32:10.123456+00`.
  at: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/),
  id: z.uuid(),
});

const badCursor = () =>
  new HttpError(
    400,
    'invalid query: cursor: not a cursor this API returned (pass nextCursor back untouched)',
    [{ field: 'cursor', message: 'not a cursor this API returned (pass nextCursor back untouched)' }],
  );

export function decodeCursor(cursor: string): PageKey {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) throw badCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  const checked = cursorSchema.safeParse(parsed);
  if (!checked.success) throw badCursor();
  return { at: checked.data.at, id: checked.data.id };
}

const isoDate = (name: string) =>
  z
    .string()
    .regex(
      /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/,
      `${name} must be an ISO 8601 date (2026-12-01) or date-time (2026-12-01T08:00:00Z)`,
    )
    .transform((v, ctx) => {
      // A date alone, or a date-time without an offset, is read as UTC.
      const withZone = /T|\s/.test(v) && !/(Z|[+-]\d{2}:?\d{2})$/.test(v) ? `${v}Z` : v;
      const date = new Date(withZone.replace(' ', 'T'));
      if (Number.isNaN(date.getTime())) {
        ctx.addIssue({ code: 'custom', message: `${name} is not a valid date` });
        return z.NEVER;
      }
      return date;
    });

const statusList = <S extends string>(allowed: readonly S[]) =>
  z
    .string()
    .transform((v, ctx) => {
      const values = v.split(',').map((s) => s.trim());
      const unknown = values.filter((s) => !(allowed as readonly string[]).includes(s));
      if (unknown.length || values.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown status ${unknown.map((u) => `"${u}"`).join(', ')}: use any of ${allowed.join(', ')} (comma-separated)`,
        });
        return z.NEVER;
      }
      return values as S[];
    })
    .describe(`one status or several, comma-separated: ${allowed.join(', ')}`);

/** `limit`: rows per page of a list endpoint. */
export const pageSizeSchema = z.coerce
  .number('must be an integer')
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
  .default(DEFAULT_PAGE_SIZE);

/** The query of a list endpoint whose rows have `statuses`. Unknown parameters are refused (a typo would filter nothing). */
export const listQuerySchema = <S extends string>(statuses: readonly S[]) =>
  z
    .strictObject({
      limit: pageSizeSchema.describe(
        `rows per page (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE})`,
      ),
      cursor: z.string().optional().describe("the previous page's nextCursor, passed back untouched"),
      status: statusList(statuses).optional(),
      baseModel: z.string().min(1, 'must not be empty').max(200).optional().describe('exact base model name'),
      createdFrom: isoDate('createdFrom')
        .optional()
        .describe('created at or after (ISO 8601 date or date-time)'),
      createdTo: isoDate('createdTo').optional().describe('created before (ISO 8601 date or date-time)'),
      requestId: z
        .string()
        .min(1, 'must not be empty')
        .max(128)
        .optional()
        .describe('only the rows of the upstream request with this requestId'),
    })
    .superRefine((q, ctx) => {
      if (q.createdFrom && q.createdTo && q.createdFrom >= q.createdTo) {
        ctx.addIssue({ code: 'custom', path: ['createdTo'], message: 'must be after createdFrom' });
      }
    });

export type ListQuery<S extends string> = z.output<ReturnType<typeof listQuerySchema<S>>>;

/** The repository's page request for a parsed query (the cursor decoded, or 400 naming it). */
export function pageRequest<S extends string>(q: ListQuery<S>) {
  return {
    limit: q.limit,
    ...(q.cursor !== undefined ? { after: decodeCursor(q.cursor) } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.baseModel !== undefined ? { baseModel: q.baseModel } : {}),
    ...(q.createdFrom ? { createdFrom: q.createdFrom } : {}),
    ...(q.createdTo ? { createdTo: q.createdTo } : {}),
    ...(q.requestId !== undefined ? { requestId: q.requestId } : {}),
  };
}

/** A page as a list endpoint answers it: its rows' views, and the cursor of the next page. */
export function pageView<R, V>(page: Page<R>, view: (row: Page<R>['rows'][number]) => V) {
  return { data: page.rows.map(view), nextCursor: page.next ? encodeCursor(page.next) : null };
}

export const nextCursorSchema = z
  .string()
  .nullable()
  .describe('pass as `cursor` for the next page (same filters); null on the last page');

/** The answer of a list endpoint (component `id`): one page of `row`s, and the next page's cursor. */
export const pageSchema = <R extends z.ZodType>(row: R, id: string) =>
  z.object({ data: z.array(row), nextCursor: nextCursorSchema }).meta({ id });
