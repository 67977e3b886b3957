import {
  type CheckedDocument,
  checkDocumentBatch,
  documentBatchSchema,
  MAX_DOCUMENT_BATCH_BYTES,
  type StoredDocument,
} from '@tuneline/contracts';
import { deleteDocument, storeDocuments, summariseDocuments } from '@tuneline/db';
import type { ApiDeps } from '../app.ts';
import { notFound, type RouteTable } from '../http.ts';
import { routeGroup } from '../route-group.ts';
import {
  documentBatchResultSchema,
  documentDeletedSchema,
  documentKeyParams,
  documentStoreSummarySchema,
} from '../schemas.ts';

const E400 = 'the batch itself is malformed (not its items); `fields` names each';

type ItemResult =
  | {
      index: number;
      configuration: string;
      id: string;
      status: 'created' | 'revised' | 'unchanged';
      revision: number;
    }
  | {
      index: number;
      configuration?: string;
      id?: string;
      status: 'invalid';
      errors: { field: string; message: string }[];
    };

export function registerDocumentRoutes(table: RouteTable, deps: ApiDeps): void {
  const routes = routeGroup(table, 'license', 'documents');
  routes.add(
    {
      method: 'POST',
      url: '/v1/documents',
      summary:
        'Store validated documents for re-training (up to 1,000 per call). Each item is checked on its own: ' +
        'the good ones are stored even when others are refused (207). The same content again is a no-op; ' +
        'new content is a new revision and the latest wins.',
      body: documentBatchSchema,
      bodyLimit: MAX_DOCUMENT_BATCH_BYTES,
      responses: {
        200: { description: 'every item stored (or unchanged)', schema: documentBatchResultSchema },
        207: { description: 'some items refused: see each `errors`', schema: documentBatchResultSchema },
        400: E400,
        413: `body over ${MAX_DOCUMENT_BATCH_BYTES} bytes`,
      },
    },
    async ({ licenseId, body, reply }) => {
      const checked = checkDocumentBatch(body.documents);
      const good = checked.filter((c): c is Extract<CheckedDocument, { ok: true }> => c.ok);
      // A repeat of the same key and content in one batch is stored once.
      const unique = new Map<string, { document: StoredDocument; contentHash: string }>();
      for (const c of good) unique.set(`${c.document.configuration}\u0000${c.document.id}`, c);
      const stored = await storeDocuments(
        deps.db,
        licenseId,
        [...unique.values()].map(({ document, contentHash }) => ({ ...document, contentHash })),
      );
      const byKey = new Map(stored.map((s) => [`${s.configuration}\u0000${s.id}`, s]));
      const seen = new Set<string>();
      const results: ItemResult[] = checked.map((c) => {
        if (!c.ok)
          return {
            index: c.index,
            configuration: c.configuration,
            id: c.id,
            status: 'invalid',
            errors: c.errors,
          };
        const key = `${c.document.configuration}\u0000${c.document.id}`;
        const s = byKey.get(key);
        if (!s) throw new Error(`document ${key} missing from the store's answer`);
        const status = seen.has(key) ? 'unchanged' : s.outcome;
        seen.add(key);
        return { index: c.index, configuration: s.configuration, id: s.id, status, revision: s.revision };
      });
      const counts = { created: 0, revised: 0, unchanged: 0, invalid: 0 };
      for (const r of results) counts[r.status] += 1;
      if (counts.invalid > 0) reply.code(207);
      return { counts, results };
    },
  );

  routes.add(
    {
      method: 'DELETE',
      url: '/v1/documents/:configuration/:documentId',
      summary:
        'Remove a document from every future dataset (a data-protection request): its text and fields are erased now',
      params: documentKeyParams,
      responses: {
        200: { description: 'deleted (or already deleted)', schema: documentDeletedSchema },
        400: E400,
        404: 'no such document for this license',
      },
    },
    async ({ licenseId, params }) => {
      const outcome = await deleteDocument(deps.db, {
        licenseId,
        configuration: params.configuration,
        id: params.documentId,
      });
      if (outcome === 'not_found') throw notFound('document');
      return {
        configuration: params.configuration,
        id: params.documentId,
        alreadyDeleted: outcome === 'already_deleted',
      };
    },
  );

  routes.add(
    {
      method: 'GET',
      url: '/v1/documents',
      summary: 'The document store per configuration: documents kept, deleted, and the latest change',
      responses: {
        200: { description: 'one entry per configuration', schema: documentStoreSummarySchema },
      },
    },
    async ({ licenseId }) => ({ configurations: await summariseDocuments(deps.db, licenseId) }),
  );
}
