import type { Document } from '@tuneline/contracts';
import type { PromptTemplate } from './examples.ts';
import { type BuildProgress, type DocumentSource, inBlocks, parseDocument } from './source.ts';

/**
 * A cheap key that equal examples always share: the user prompt's length and a hash of the answer (the
 * system prompt is the same for all). An example whose key no other document has cannot repeat one.
 */
export type ExampleKey = (doc: Document) => number;

export function exampleKeyFor(
  prompt: PromptTemplate,
  answerKey: (fields: Document['fields']) => number,
): ExampleKey {
  // One small integer (no string, no heap number per document): mixing the two can only group more
  // documents (each pair costs a digest in the build pass), never separate equal ones.
  return (doc) => (Math.imul(prompt.length(doc), 0x9e3779b1) ^ answerKey(doc.fields)) | 0;
}

/**
 * The first pass: ids, repeated ids and examples that may repeat, per source position. Its work per
 * document is a method for the reason given at ExamplePass (example-pass.ts).
 */
export class ScanPass {
  /** Document id per position (undefined when the item is not a valid document). */
  readonly ids: (string | undefined)[] = [];
  /** Position of a repeated id → position of its first use. */
  readonly duplicateOf = new Map<number, number>();
  /**
   * Positions whose example may equal another one: those sharing their example key with another
   * document. Only these need a digest of their line in the build pass.
   */
  readonly mayRepeat = new Set<number>();
  private readonly firstIndexOf = new Map<string, number>();
  private readonly firstByKey = new Map<number, number>();

  constructor(
    private readonly exampleKey: ExampleKey | undefined,
    private readonly onProgress: ((p: BuildProgress) => void) | undefined,
  ) {}

  handleBlock(block: readonly unknown[]): void {
    for (const item of block) this.handle(item);
  }

  private handle(item: unknown): void {
    const { ids, exampleKey } = this;
    const doc = parseDocument(item);
    if (doc.success) {
      const d = doc.data;
      if (exampleKey) {
        const key = exampleKey(d);
        const first = this.firstByKey.get(key);
        if (first === undefined) this.firstByKey.set(key, ids.length);
        else this.mayRepeat.add(first).add(ids.length);
      }
      const first = this.firstIndexOf.get(d.id);
      if (first === undefined) this.firstIndexOf.set(d.id, ids.length);
      else this.duplicateOf.set(ids.length, first);
      ids.push(d.id);
    } else ids.push(undefined);
    if (ids.length % 1000 === 0) this.onProgress?.({ phase: 'scan', done: ids.length, total: undefined });
  }
}

export async function scan(
  source: DocumentSource,
  exampleKey: ExampleKey | undefined,
  onProgress?: (p: BuildProgress) => void,
): Promise<ScanPass> {
  const pass = new ScanPass(exampleKey, onProgress);
  for await (const block of inBlocks(source())) pass.handleBlock(block);
  return pass;
}
