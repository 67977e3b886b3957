import { type Selectable, sql } from 'kysely';
import type { Executor } from '../connection.ts';
import type { DocumentsTable } from '../schema.ts';
import { firstRecord } from './records.ts';

/** One document of a license's configuration. */
type DocumentKey = { licenseId: string; configuration: string; id: string };

/** The `documents` columns that name the document `key`. */
const documentKey = (key: DocumentKey) => ({
  license_id: key.licenseId,
  configuration: key.configuration,
  document_id: key.id,
});

/** A document to store, already checked, with the hash of its text and fields. */
export interface DocumentToStore {
  configuration: string;
  id: string;
  text: string;
  fields: unknown;
  contentHash: string;
}

export type StoreOutcome = 'created' | 'revised' | 'unchanged';

export interface StoredDocumentResult {
  configuration: string;
  id: string;
  outcome: StoreOutcome;
  revision: number;
}

/** The document `key` (its tombstone included), as a select to choose columns of. */
const selectDocument = (db: Executor, key: DocumentKey) =>
  db.selectFrom('documents').where((eb) => eb.and(documentKey(key)));

const keyOf = (configuration: string, id: string) => `${configuration}\u0000${id}`;

/**
 * Stores a batch in one statement. A new key is created (revision 1); a known key with other content,
 * or one deleted earlier, becomes its next revision (the latest wins); the same content changes
 * nothing, not even `updated_at`, so re-sending a batch is a no-op. The caller passes each key once.
 */
export async function storeDocuments(
  db: Executor,
  licenseId: string,
  documents: readonly DocumentToStore[],
): Promise<StoredDocumentResult[]> {
  if (documents.length === 0) return [];
  const written = await db
    .insertInto('documents')
    .values(
      documents.map((d) => ({
        license_id: licenseId,
        configuration: d.configuration,
        document_id: d.id,
        content_hash: d.contentHash,
        text: d.text,
        fields: JSON.stringify(d.fields),
      })),
    )
    .onConflict((oc) =>
      oc
        .columns(['license_id', 'configuration', 'document_id'])
        .doUpdateSet({
          revision: sql`documents.revision + 1`,
          content_hash: sql`excluded.content_hash`,
          text: sql`excluded.text`,
          fields: sql`excluded.fields`,
          change_seq: sql`nextval('document_changes')`,
          updated_at: sql`now()`,
          deleted_at: null,
        })
        .where((eb) =>
          eb.or([
            eb('documents.content_hash', '<>', eb.ref('excluded.content_hash')),
            eb('documents.deleted_at', 'is not', null),
          ]),
        ),
    )
    .returning(['configuration', 'document_id', 'revision', sql<boolean>`(xmax = 0)`.as('inserted')])
    .execute();
  const byKey = new Map<string, StoredDocumentResult>();
  for (const row of written) {
    byKey.set(keyOf(row.configuration, row.document_id), {
      configuration: row.configuration,
      id: row.document_id,
      outcome: row.inserted ? 'created' : 'revised',
      revision: row.revision,
    });
  }
  const unchanged = documents.filter((d) => !byKey.has(keyOf(d.configuration, d.id)));
  if (unchanged.length > 0) {
    const rows = await db
      .selectFrom('documents')
      .select(['configuration', 'document_id', 'revision'])
      .where('license_id', '=', licenseId)
      // Two IN lists select a superset (every id under every configuration named); the key check below
      // keeps the pairs asked for. One indexed scan, where a 1,000-term OR of pairs was planned slowly.
      .where('configuration', 'in', [...new Set(unchanged.map((d) => d.configuration))])
      .where('document_id', 'in', [...new Set(unchanged.map((d) => d.id))])
      .execute();
    const asked = new Set(unchanged.map((d) => keyOf(d.configuration, d.id)));
    for (const row of rows) {
      if (!asked.has(keyOf(row.configuration, row.document_id))) continue;
      byKey.set(keyOf(row.configuration, row.document_id), {
        configuration: row.configuration,
        id: row.document_id,
        outcome: 'unchanged',
        revision: row.revision,
      });
    }
  }
  return documents.map((d) => {
    const result = byKey.get(keyOf(d.configuration, d.id));
    // Only a concurrent DELETE of the same key between the two statements gets here; the caller retries.
    if (!result) throw new Error(`document ${d.configuration}/${d.id} changed while it was being stored`);
    return result;
  });
}

export type DeleteOutcome = 'deleted' | 'already_deleted' | 'not_found';

/**
 * Removes a document from every future dataset (a data-protection request): its text and fields are
 * erased, and the key stays as a tombstone so the next dataset version counts it as removed.
 */
export async function deleteDocument(db: Executor, key: DocumentKey): Promise<DeleteOutcome> {
  const erased = await db
    .updateTable('documents')
    .set({
      text: '',
      fields: '{}',
      content_hash: '',
      deleted_at: sql`now()`,
      updated_at: sql`now()`,
      change_seq: sql`nextval('document_changes')`,
    })
    .where((eb) => eb.and(documentKey(key)))
    .where('deleted_at', 'is', null)
    .returning('document_id')
    .executeTakeFirst();
  if (erased) return 'deleted';
  const tombstone = await selectDocument(db, key).select('document_id').executeTakeFirst();
  return tombstone ? 'already_deleted' : 'not_found';
}

export interface DocumentStoreSummary {
  configuration: string;
  /** Documents that future datasets include. */
  documents: number;
  /** Tombstones of deleted documents. */
  deleted: number;
  /** The store's position: a later version compares its own against this one. */
  lastChangeSeq: string;
  lastChangedAt: Date;
}

/** Per configuration: how many documents, how many deleted, and the latest change. */
export async function summariseDocuments(db: Executor, licenseId: string): Promise<DocumentStoreSummary[]> {
  const rows = await db
    .selectFrom('documents')
    .select((eb) => [
      'configuration',
      eb.fn.count<string>('document_id').filterWhere('deleted_at', 'is', null).as('documents'),
      eb.fn.count<string>('document_id').filterWhere('deleted_at', 'is not', null).as('deleted'),
      eb.fn.max('change_seq').as('last_change_seq'),
      eb.fn.max('updated_at').as('last_changed_at'),
    ])
    .where('license_id', '=', licenseId)
    .groupBy('configuration')
    .orderBy('configuration')
    .execute();
  return rows.map((r) => ({
    configuration: r.configuration,
    documents: Number(r.documents),
    deleted: Number(r.deleted),
    lastChangeSeq: String(r.last_change_seq),
    lastChangedAt: r.last_changed_at as Date,
  }));
}

export interface StoredDocumentRecord {
  configuration: string;
  id: string;
  revision: number;
  contentHash: string;
  text: string;
  fields: unknown;
  changeSeq: string;
  updatedAt: Date;
  deletedAt: Date | null;
}

const toStoredDocumentRecord = (row: Selectable<DocumentsTable>): StoredDocumentRecord => ({
  configuration: row.configuration,
  id: row.document_id,
  revision: row.revision,
  contentHash: row.content_hash,
  text: row.text,
  fields: row.fields,
  changeSeq: row.change_seq,
  updatedAt: row.updated_at,
  deletedAt: row.deleted_at,
});

/** One document, tombstone included (the caller decides what a deleted one means). */
export async function findDocument(
  db: Executor,
  key: DocumentKey,
): Promise<StoredDocumentRecord | undefined> {
  return firstRecord(selectDocument(db, key).selectAll(), toStoredDocumentRecord);
}

/**
 * A configuration's live documents in document-id order, one page per round trip (keyset paging on the
 * primary key, so page k costs the same as page 1 and memory holds one page). A dataset build reads the
 * store through this twice (its scan and its build pass), like any other document source.
 */
export async function* readStoredDocuments(
  db: Executor,
  key: { licenseId: string; configuration: string },
  pageSize = 1_000,
): AsyncGenerator<{ id: string; text: string; fields: unknown }> {
  let after: string | undefined;
  for (;;) {
    let query = db
      .selectFrom('documents')
      .select(['document_id', 'text', 'fields'])
      .where('license_id', '=', key.licenseId)
      .where('configuration', '=', key.configuration)
      .where('deleted_at', 'is', null)
      .orderBy('document_id')
      .limit(pageSize);
    if (after !== undefined) query = query.where('document_id', '>', after);
    const page = await query.execute();
    for (const row of page) yield { id: row.document_id, text: row.text, fields: row.fields };
    if (page.length < pageSize) return;
    after = page[page.length - 1]?.document_id;
  }
}
