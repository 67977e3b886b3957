import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type FieldError, formatPath } from './errors.ts';
import { documentSchema, idString } from './fine-tune-request.ts';
import { canonicalJson } from './producer.ts';

/**
 * The document store's input: validated documents an app sends as they accrue, kept per license and
 * keyed by (configuration, document id) so re-training can build versioned datasets from them.
 */

/** At most this many documents per call (`POST /v1/documents`). */
export const MAX_DOCUMENT_BATCH = 1_000;
/** At most this many bytes per call's JSON body: 1,000 documents of 16 KB each. */
export const MAX_DOCUMENT_BATCH_BYTES = 16 * 1024 * 1024;
/** At most this many bytes of one document's text and fields (as JSON): an item error beyond it. */
export const MAX_STORED_DOCUMENT_BYTES = 256 * 1024;

/** One stored document as an app sends it: the fine-tune request's document plus its configuration. */
export const storedDocumentSchema = documentSchema
  .extend({
    /** The model configuration the document belongs to (e.g. `invoices`), as the app names it. */
    configuration: idString('configuration', 64),
  })
  .strict();
export type StoredDocumentInput = z.input<typeof storedDocumentSchema>;
export type StoredDocument = z.output<typeof storedDocumentSchema>;

/** The batch's shape; each item is checked on its own so one bad document does not refuse the rest. */
export const documentBatchSchema = z
  .object({
    documents: z
      .array(z.unknown())
      .min(1, 'must contain at least 1 document')
      .max(MAX_DOCUMENT_BATCH, `must contain at most ${MAX_DOCUMENT_BATCH} documents`),
  })
  .strict();

/** Equal text and fields give an equal hash whatever the key order: a re-sent document is a no-op. */
export function documentContentHash(doc: { text: string; fields: unknown }): string {
  return createHash('sha256')
    .update(canonicalJson({ text: doc.text, fields: doc.fields }))
    .digest('hex');
}

/** `documents[3]`: where an item sits in the request body. */
const itemPath = (index: number): PropertyKey[] => ['documents', index];

export type CheckedDocument =
  | { index: number; ok: true; document: StoredDocument; contentHash: string }
  | { index: number; ok: false; configuration?: string; id?: string; errors: FieldError[] };

/**
 * Checks every item of a batch on its own. Field names are the item's path (`documents[3].text`), so
 * a 207 answer points at the exact value. The same key twice in one batch with different content is
 * an error on the later item (which one should win is the app's call, not ours); with equal content
 * the repeat is simply stored once.
 */
export function checkDocumentBatch(items: readonly unknown[]): CheckedDocument[] {
  const seen = new Map<string, { index: number; hash: string }>();
  return items.map((item, index): CheckedDocument => {
    const at = `documents[${index}]`;
    const parsed = storedDocumentSchema.safeParse(item);
    if (!parsed.success) {
      const raw = (item ?? {}) as { configuration?: unknown; id?: unknown };
      return {
        index,
        ok: false,
        ...(typeof raw.configuration === 'string' ? { configuration: raw.configuration } : {}),
        ...(typeof raw.id === 'string' ? { id: raw.id } : {}),
        errors: parsed.error.issues.map((issue) => ({
          field: formatPath([...itemPath(index), ...issue.path]),
          message: issue.message,
        })),
      };
    }
    const document = parsed.data;
    const bytes = Buffer.byteLength(document.text) + Buffer.byteLength(JSON.stringify(document.fields));
    const key = { configuration: document.configuration, id: document.id };
    if (bytes > MAX_STORED_DOCUMENT_BYTES) {
      return {
        index,
        ok: false,
        ...key,
        errors: [
          { field: at, message: `text and fields are ${bytes} bytes; at most ${MAX_STORED_DOCUMENT_BYTES}` },
        ],
      };
    }
    const contentHash = documentContentHash(document);
    const mapKey = `${document.configuration}\u0000${document.id}`;
    const earlier = seen.get(mapKey);
    if (earlier && earlier.hash !== contentHash) {
      return {
        index,
        ok: false,
        ...key,
        errors: [
          {
            field: `${at}.id`,
            message: `documents[${earlier.index}] has the same configuration and id with different content`,
          },
        ],
      };
    }
    if (!earlier) seen.set(mapKey, { index, hash: contentHash });
    return { index, ok: true, document, contentHash };
  });
}
