import { setImmediate as turnOfEventLoop } from 'node:timers/promises';
import { type Document, documentSchema, fieldErrors } from '@tuneline/contracts';
import { InvalidLine } from './ndjson.ts';

/**
 * Documents, read twice: a cheap first pass (count, ids) and the build pass. Each item has passed
 * `documentSchema` where it entered (the request's documents with the queue message, the store's on
 * insert, an NDJSON file's lines in readNdjsonDocuments), or is an `InvalidLine` naming what failed.
 */
export type DocumentSource = () => Iterable<unknown> | AsyncIterable<unknown>;

export interface BuildProgress {
  phase: 'scan' | 'build';
  done: number;
  total: number | undefined;
}

/**
 * Checks one source item. Sources yield items that passed the document schema (DocumentSource), so a
 * structural check suffices on the hot path; zod runs only to name what is wrong with an item that
 * fails it. An `InvalidLine` fails with its line and problems.
 */
export function parseDocument(
  item: unknown,
):
  | { success: true; data: Document }
  | { success: false; line?: number; problems: readonly { field?: string; message: string }[] } {
  if (item instanceof InvalidLine) return { success: false, line: item.line, problems: item.problems };
  if (typeof item === 'object' && item !== null) {
    const { id, text, fields } = item as Record<string, unknown>;
    if (
      typeof id === 'string' &&
      id.length > 0 &&
      id.length <= 200 &&
      typeof text === 'string' &&
      typeof fields === 'object' &&
      fields !== null &&
      !Array.isArray(fields)
    ) {
      return { success: true, data: item as Document };
    }
  }
  const parsed = documentSchema.safeParse(item);
  return parsed.success
    ? { success: true, data: parsed.data }
    : { success: false, problems: fieldErrors(parsed.error) };
}

/** Items taken from a source at a time: one await per block rather than one per document. */
const SOURCE_BLOCK = 64;
/**
 * Blocks of a plain source between two turns of the event loop (~1,000 documents, ~0.15 s of building):
 * awaiting a block only waits for a microtask, so without these turns timers (the queue lock's renewal)
 * and I/O would wait for the whole pass.
 */
const BLOCKS_PER_TURN = 16;

/**
 * A source's items in blocks. `for await` over a plain iterable (the worker's documents array) would
 * otherwise wrap every item in a promise and wait a microtask for it.
 */
export async function* inBlocks(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): AsyncGenerator<unknown[]> {
  let block: unknown[] = [];
  if (Symbol.iterator in items) {
    let blocks = 0;
    for (const item of items) {
      if (block.push(item) === SOURCE_BLOCK) {
        if (++blocks % BLOCKS_PER_TURN === 0) await turnOfEventLoop();
        yield block;
        block = [];
      }
    }
  } else {
    for await (const item of items) {
      if (block.push(item) === SOURCE_BLOCK) {
        yield block;
        block = [];
      }
    }
  }
  if (block.length) yield block;
}
