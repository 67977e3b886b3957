import { type RawBuilder, sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { DatasetRow, DatasetStatus, FineTuneRow, FineTuneStatus } from '../schema.ts';
import { type DatasetRecord, toDatasetRecord } from './datasets.ts';
import type { DeadLetterRecord } from './dead-letters.ts';
import { type FineTuneRecord, toFineTuneRecord } from './fine-tunes.ts';
import { findRequest, type StoredRequest } from './requests.ts';

/**
 * Paged lists of a license's datasets and fine-tunes (issue 15.7): newest first in a stable order
 * (`created_at DESC, id DESC`), keyset paging (a page starts after the last row of the previous one, so
 * a deep page costs what the first does), and filters. Indexes: migration 0016.
 */

/** Where a page starts: after the row with this creation time and id. */
export interface PageKey {
  /** `created_at` exactly as Postgres prints it (microseconds and offset: a JS Date would lose them). */
  at: string;
  id: string;
}

export interface ListFilter<S extends string> {
  /** Any of these statuses. */
  status?: readonly S[];
  baseModel?: string;
  /** Created at or after this time. */
  createdFrom?: Date;
  /** Created before this time. */
  createdTo?: Date;
  /** Only the rows of the upstream request with this requestId. */
  requestId?: string;
}

export interface PageRequest<S extends string> extends ListFilter<S> {
  after?: PageKey;
  limit: number;
}

/** A row's open dead letter, as the lists show it (read with the page, no second query). */
export type OpenDeadLetter = Pick<
  DeadLetterRecord,
  'id' | 'queue' | 'reason' | 'recoveries' | 'deadLetteredAt'
>;

export interface Page<T> {
  rows: (T & { deadLetter?: OpenDeadLetter })[];
  /** The key to continue after, or null on the last page. */
  next: PageKey | null;
}

/** The page row's open dead letter (the most recent), as columns `dl_*`, from a LATERAL sub-select. */
const OPEN_DEAD_LETTER = sql`LEFT JOIN LATERAL (SELECT d.id AS dl_id, d.queue AS dl_queue, d.reason AS dl_reason,
    d.recoveries AS dl_recoveries, d.dead_lettered_at AS dl_at FROM dead_letters d
    WHERE d.status = 'dead_lettered' AND d.subject_id = t.id::text
    ORDER BY d.dead_lettered_at DESC LIMIT 1) dl ON true`;

interface DeadLetterColumns {
  dl_id: string | null;
  dl_queue: string | null;
  dl_reason: string | null;
  dl_recoveries: number | null;
  dl_at: Date | null;
}

function withDeadLetter<T>(record: T, row: DeadLetterColumns): T & { deadLetter?: OpenDeadLetter } {
  if (row.dl_id === null) return record as T & { deadLetter?: OpenDeadLetter };
  return {
    ...record,
    deadLetter: {
      id: row.dl_id,
      queue: row.dl_queue ?? '',
      reason: row.dl_reason,
      recoveries: row.dl_recoveries ?? 0,
      deadLetteredAt: row.dl_at,
    },
  };
}

/** The filters and the page start as conditions on the listed table (aliased `t`). */
function pageConditions(page: PageRequest<string>, ofRequest: (requestId: string) => RawBuilder<boolean>) {
  const conditions: RawBuilder<boolean>[] = [];
  if (page.status?.length)
    conditions.push(sql<boolean>`t.status = ANY(${sql.val([...page.status])}::text[])`);
  if (page.baseModel !== undefined) conditions.push(sql<boolean>`t.base_model = ${page.baseModel}`);
  if (page.createdFrom) conditions.push(sql<boolean>`t.created_at >= ${page.createdFrom}`);
  if (page.createdTo) conditions.push(sql<boolean>`t.created_at < ${page.createdTo}`);
  if (page.requestId !== undefined) conditions.push(ofRequest(page.requestId));
  if (page.after) {
    conditions.push(
      sql<boolean>`(t.created_at, t.id) < (${page.after.at}::timestamptz, ${page.after.id}::uuid)`,
    );
  }
  return conditions;
}

type PageColumns = { page_at: string } & DeadLetterColumns;

/** The condition "row `t` of the license's upstream request with this requestId", per listed table. */
const OF_REQUEST = {
  datasets: (licenseId: string, requestId: string) =>
    sql<boolean>`t.request_row_id IN (SELECT r.id FROM fine_tune_requests r
      WHERE r.license_id = ${licenseId} AND r.request_id = ${requestId})`,
  fine_tunes: (licenseId: string, requestId: string) =>
    sql<boolean>`t.dataset_id IN (SELECT d.id FROM datasets d JOIN fine_tune_requests r ON r.id = d.request_row_id
      WHERE r.license_id = ${licenseId} AND r.request_id = ${requestId})`,
};

/** One page of the license's rows of `table`, newest first, each with its open dead letter. */
async function pageOf<R extends { id: string }, T>(
  db: Executor,
  table: keyof typeof OF_REQUEST,
  licenseId: string,
  page: PageRequest<string>,
  map: (row: R) => T,
): Promise<Page<T>> {
  const ofRequest = (requestId: string) => OF_REQUEST[table](licenseId, requestId);
  const where = sql.join([sql`t.license_id = ${licenseId}`, ...pageConditions(page, ofRequest)], sql` AND `);
  const { rows } = await sql<R & PageColumns>`
    SELECT t.*, t.created_at::text AS page_at, dl.* FROM ${sql.table(table)} t ${OPEN_DEAD_LETTER}
    WHERE ${where} ORDER BY t.created_at DESC, t.id DESC LIMIT ${page.limit + 1}`.execute(db);
  const more = rows.length > page.limit;
  const shown = more ? rows.slice(0, page.limit) : rows;
  const last = shown[shown.length - 1];
  return {
    rows: shown.map((row) => withDeadLetter(map(row), row)),
    next: more && last ? { at: last.page_at, id: last.id } : null,
  };
}

/** One page of a license's datasets, newest first. */
export const pageDatasets = (db: Executor, licenseId: string, page: PageRequest<DatasetStatus>) =>
  pageOf<DatasetRow, DatasetRecord>(db, 'datasets', licenseId, page, toDatasetRecord);

/** One page of a license's fine-tunes, newest first. */
export const pageFineTunes = (db: Executor, licenseId: string, page: PageRequest<FineTuneStatus>) =>
  pageOf<FineTuneRow, FineTuneRecord>(db, 'fine_tunes', licenseId, page, toFineTuneRecord);

/** What became of an upstream request: the stored request, its dataset and that dataset's fine-tunes. */
export interface RequestOutcome {
  request: StoredRequest;
  dataset: DatasetRecord | undefined;
  /** Newest first. */
  fineTunes: FineTuneRecord[];
}

export async function findRequestOutcome(
  db: Executor,
  licenseId: string,
  requestId: string,
): Promise<RequestOutcome | undefined> {
  const request = await findRequest(db, licenseId, requestId);
  if (!request) return undefined;
  const datasetRow = await db
    .selectFrom('datasets')
    .selectAll()
    .where('request_row_id', '=', request.id)
    .executeTakeFirst();
  const dataset = datasetRow ? toDatasetRecord(datasetRow) : undefined;
  const fineTunes = dataset
    ? (
        await db
          .selectFrom('fine_tunes')
          .selectAll()
          .where('dataset_id', '=', dataset.id)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .execute()
      ).map(toFineTuneRecord)
    : [];
  return { request, dataset, fineTunes };
}
