import { createInterface } from 'node:readline';
import { type FineTuneRequest, fineTuneRequestSchema } from '@tuneline/contracts';
import { chooseTestSet, type DatasetStorage, seededRank, splitSeed } from '@tuneline/dataset';

/** One example of the testing file: what is sent (every message but the last) and the expected answer. */
export interface TestExample {
  /** The document id (from the stored request), or `line-<n>` when it cannot be told. */
  id: string;
  /** 0-based line of the testing file: the example's position in the run. */
  position: number;
  messages: Array<{ role: 'system' | 'developer' | 'user' | 'assistant'; content: string }>;
  expected: string;
}

type ChatMessage = TestExample['messages'][number];

/** Reads the testing file: one chat example a line, its last message the assistant's expected answer. */
export async function readTestingFile(storage: DatasetStorage, key: string): Promise<TestExample[]> {
  const lines = createInterface({ input: storage.openRead(key), crlfDelay: Number.POSITIVE_INFINITY });
  const examples: TestExample[] = [];
  for await (const line of lines) {
    if (!line.trim()) continue;
    const position = examples.length;
    const parsed = JSON.parse(line) as { messages?: ChatMessage[] };
    const messages = parsed.messages ?? [];
    const last = messages[messages.length - 1];
    if (last?.role !== 'assistant') {
      throw new Error(
        `testing file ${key}, example ${position + 1}: the last message is not the assistant's`,
      );
    }
    examples.push({
      id: `line-${position + 1}`,
      position,
      messages: messages.slice(0, -1).map((m) => ({ role: m.role, content: String(m.content) })),
      expected: String(last.content),
    });
  }
  return examples;
}

/**
 * The request's testing documents' ids in file order, as the dataset builder chose them (the same split
 * seed and ranking); undefined when the stored request does not give exactly as many as the file holds.
 */
export function testingDocumentIds(payload: unknown, count: number): string[] | undefined {
  const parsed = fineTuneRequestSchema.safeParse(payload);
  if (!parsed.success) return undefined;
  const request: FineTuneRequest = parsed.data;
  // A request built from the document store names no documents; its testing ids are not in the payload.
  if (!request.documents) return undefined;
  const ids = request.documents.map((d) => d.id);
  const chosen = chooseTestSet(ids, request.testPercent, splitSeed(request));
  const inOrder = [...chosen].sort((a, b) => a - b).map((i) => ids[i] as string);
  return inOrder.length === count ? inOrder : undefined;
}

/** The split seed of a stored request, for sampling; undefined when the payload is not a request. */
export function requestSplitSeed(payload: unknown): string | undefined {
  const parsed = fineTuneRequestSchema.safeParse(payload);
  return parsed.success ? splitSeed(parsed.data) : undefined;
}

/**
 * At most `max` examples, the same ones for the same seed: those of lowest seeded rank (the ranking
 * the split itself uses), kept in file order.
 */
export function sampleExamples<T extends { id: string; position: number }>(
  examples: readonly T[],
  max: number,
  seed: string,
): T[] {
  if (examples.length <= max) return [...examples];
  const rankOf = seededRank(`${seed}\u0000evaluation`);
  return [...examples]
    .map((e) => ({ e, rank: rankOf(e.id) }))
    .sort((a, b) => a.rank - b.rank || a.e.position - b.e.position)
    .slice(0, max)
    .map((x) => x.e)
    .sort((a, b) => a.position - b.position);
}
