import { createHash, hash as oneShotHash } from 'node:crypto';
import { setImmediate as turnOfEventLoop } from 'node:timers/promises';
import {
  canonicalJson,
  type Document,
  documentSchema,
  type FineTuneRequest,
  formatZodError,
} from '@tuneline/contracts';
import {
  type BaseModel,
  type Catalogue,
  defaultCatalogue,
  findBaseModel,
  resolveEpochs,
  trainingCredits,
} from './catalogue.ts';
import {
  compileAnswerKey,
  compileAnswerTokens,
  compileAssistantContent,
  compilePromptTemplate,
  escapePlainText,
  exampleLineParts,
  isEmptyValue,
  isPlainText,
  type PromptTemplate,
  TemplateError,
} from './examples.ts';
import { shortHash } from './hash.ts';
import { type DatasetIssue, IssueList } from './issues.ts';
import { IntList, type TokenStats, tokenOutliers, tokenStats } from './stats.ts';
import type { DatasetStorage } from './storage.ts';
import {
  findControlChar,
  findSpecialToken,
  jsonMayHoldControlChar,
  REPLY_PRIMING_TOKENS,
  splitsAfter,
  startsPiece,
  TOKENS_PER_MESSAGE,
  type TokenCounter,
  tokenCounter,
} from './tokens.ts';
import { LineWriter } from './writer.ts';

export const MIN_TRAIN_EXAMPLES = 10;
export const RECOMMENDED_DOCUMENTS = 50;
/** A mapped field empty in more than this share of documents gets a warning. */
export const EMPTY_FIELD_WARNING_SHARE = 0.2;

/** Everything of a request except the documents (and the ids that do not affect the dataset). */
export type DatasetSettings = Pick<
  FineTuneRequest,
  'modelConfig' | 'dump' | 'testPercent' | 'baseModel' | 'job'
>;

/**
 * Documents, read twice: a cheap first pass (count, ids) and the build pass. Items are checked
 * against the document schema, so a source may yield raw parsed JSON.
 */
export type DocumentSource = () => Iterable<unknown> | AsyncIterable<unknown>;

export interface BuildProgress {
  phase: 'scan' | 'build';
  done: number;
  total: number | undefined;
}

export interface BuildOptions {
  storage: DatasetStorage;
  trainKey: string;
  testKey: string;
  catalogue?: Catalogue;
  onProgress?(p: BuildProgress): void;
  /** Issues of each kind (errors, warnings) kept at most. */
  maxIssues?: number;
}

export interface DatasetBuild {
  status: 'ready' | 'invalid';
  errors: DatasetIssue[];
  warnings: DatasetIssue[];
  documents: number;
  baseModel: string;
  trainExamples: number;
  testExamples: number;
  trainTokens: bigint;
  testTokens: bigint;
  trainTokenStats: TokenStats;
  epochs: number | null;
  estimatedBilledTokens: bigint | null;
  estimatedCredits: bigint | null;
  /** SHA-256 over the file contents (`train:<sha256 of train>\ntest:<sha256 of test>`), and its first 8 chars. */
  contentHash: string | null;
  shortHash: string | null;
  /** Storage keys of the written files (null when not written). */
  trainKey: string | null;
  testKey: string | null;
  trainBytes: number;
  testBytes: number;
}

/** The base model's problems, if any (unknown, not fine-tunable, past its shutdown date). */
export function baseModelIssue(
  name: string,
  catalogue: Catalogue,
  today = new Date(),
): DatasetIssue | undefined {
  const model = findBaseModel(name, catalogue);
  if (!model) {
    const known = Object.values(catalogue)
      .filter((m) => m.fineTunable)
      .map((m) => m.name);
    return {
      code: 'unknown_base_model',
      field: 'baseModel',
      message: `unknown base model "${name}" (fine-tunable models: ${known.join(', ')})`,
    };
  }
  if (!model.fineTunable) {
    return {
      code: 'base_model_not_fine_tunable',
      field: 'baseModel',
      message: `base model "${name}" cannot be fine-tuned`,
    };
  }
  if (model.shutdownDate && model.shutdownDate <= today.toISOString().slice(0, 10)) {
    return {
      code: 'base_model_retired',
      field: 'baseModel',
      message: `base model "${name}" takes no new fine-tuning jobs since ${model.shutdownDate}`,
    };
  }
  return undefined;
}

/**
 * Checks one source item. Sources yield parsed JSON (the worker's message was parsed by the queue
 * schema; the CLI parses NDJSON), so a structural check suffices on the hot path; zod runs only to name
 * what is wrong with an item that fails it.
 */
function parseDocument(
  item: unknown,
): { success: true; data: Document } | { success: false; message: string } {
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
    : { success: false, message: formatZodError(parsed.error) };
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
async function* inBlocks(items: Iterable<unknown> | AsyncIterable<unknown>): AsyncGenerator<unknown[]> {
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

/**
 * A cheap key that equal examples always share: the user prompt's length and a hash of the answer (the
 * system prompt is the same for all). An example whose key no other document has cannot repeat one.
 */
type ExampleKey = (doc: Document) => number;

function exampleKeyFor(
  prompt: PromptTemplate,
  answerKey: (fields: Document['fields']) => number,
): ExampleKey {
  // One small integer (no string, no heap number per document): mixing the two can only group more
  // documents (each pair costs a digest in the build pass), never separate equal ones.
  return (doc) => (Math.imul(prompt.length(doc), 0x9e3779b1) ^ answerKey(doc.fields)) | 0;
}

/**
 * The first pass: ids, repeated ids and examples that may repeat, per source position. Its work per
 * document is a method for the reason given at ExamplePass.
 */
class ScanPass {
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
    private readonly opts: BuildOptions,
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
    if (ids.length % 1000 === 0)
      this.opts.onProgress?.({ phase: 'scan', done: ids.length, total: undefined });
  }
}

async function scan(
  source: DocumentSource,
  opts: BuildOptions,
  exampleKey: ExampleKey | undefined,
): Promise<ScanPass> {
  const pass = new ScanPass(exampleKey, opts);
  for await (const block of inBlocks(source())) pass.handleBlock(block);
  return pass;
}

/**
 * The split's seed: what shapes the files (not the request's ids, its job options or the documents), so
 * the CLI and the worker split the same documents the same way, and a document's rank depends on its
 * id alone: adding documents to a request moves few of the others across the split.
 */
export function splitSeed(settings: DatasetSettings): string {
  const { modelConfig, dump, testPercent, baseModel } = settings;
  return createHash('sha256')
    .update(canonicalJson({ modelConfig, dump, testPercent, baseModel }))
    .digest('hex');
}

/**
 * The testing file's documents: a shuffle seeded by the settings (each document ranked by a 53-bit hash
 * of the seed and its id), first `testPercent` of them. The same request always gives the same split.
 */
export function chooseTestSet(
  ids: readonly (string | undefined)[],
  testPercent: number,
  seed: string,
): Set<number> {
  const count = Math.round((ids.length * testPercent) / 100);
  if (count <= 0) return new Set();
  // Ranks kept in a typed array (no per-document objects); equal ranks fall back to document order.
  const rankOf = seededRank(seed);
  const ranks = new Float64Array(ids.length);
  const order: number[] = [];
  ids.forEach((id, index) => {
    if (id === undefined) return;
    ranks[index] = rankOf(id);
    order.push(index);
  });
  order.sort((a, b) => (ranks[a] as number) - (ranks[b] as number) || a - b);
  return new Set(order.slice(0, count));
}

/**
 * A 53-bit hash of `seed + "\0" + id` (cyrb53: two multiplicative 32-bit lanes, mixed at the end),
 * with the seed's part computed once. Not cryptographic, and need not be: it only has to shuffle ids
 * evenly and the same way every time, and it is ~20 times cheaper per id than SHA-256.
 */
export function seededRank(seed: string): (id: string) => number {
  let s1 = 0xdeadbeef;
  let s2 = 0x41c6ce57;
  for (let i = 0; i <= seed.length; i++) {
    const c = i < seed.length ? seed.charCodeAt(i) : 0;
    s1 = Math.imul(s1 ^ c, 2654435761);
    s2 = Math.imul(s2 ^ c, 1597334677);
  }
  return (id) => {
    let h1 = s1;
    let h2 = s2;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return 4294967296 * (0x1fffff & h2) + (h1 >>> 0);
  };
}

/** What a build pass starts from: the build's settings and the scan's findings. */
interface ExamplePassInput {
  settings: DatasetSettings;
  model: BaseModel | undefined;
  prompt: PromptTemplate | undefined;
  scan: ScanPass;
  testSet: Set<number>;
  errors: IssueList;
  opts: BuildOptions;
  trainWriter: LineWriter;
  testWriter: LineWriter | undefined;
}

/**
 * The build pass's work per document, and what it gathers. A method called per document rather than the
 * body of a loop inside buildDataset: V8 optimised that whole async function (85–105 ms of compiler time
 * each) once or twice in each of a process's first builds, as the loop got hot, and dropped the code
 * when the build ended. This method takes ~16 ms to compile and keeps its code across builds.
 */
class ExamplePass {
  /** Position of the current item in the source. */
  index = -1;
  parsedDocs = 0;
  usable = 0;
  // Plain numbers on the hot path (exact: sums stay far below 2^53), BigInt in the result.
  testTokenSum = 0;
  testExamples = 0;
  billableSum = 0;
  readonly trainTokens = new IntList();
  readonly trainIndexes = new IntList();
  readonly emptyCounts: Map<string, number>;
  /** First 48 bits of the line's SHA-1 for examples that may repeat: duplicates without keeping lines. */
  readonly seenExamples = new Set<number>();
  readonly duplicateIds: string[] = [];
  duplicateCount = 0;

  private readonly errors: IssueList;
  private readonly opts: BuildOptions;
  private readonly total: number;
  private readonly duplicateOf: Map<number, number>;
  private readonly mayRepeat: Set<number>;
  private readonly testSet: Set<number>;
  private readonly prompt: PromptTemplate | undefined;
  /**
   * A prompt `prefix + text` where the tokenizer provably splits (splitsAfter) is checked, encoded and
   * counted as its two parts, never joined (which copies every text).
   */
  private readonly splitPrefix: PromptTemplate['prefix'];
  private readonly model: BaseModel | undefined;
  private readonly counter: TokenCounter | undefined;
  /** Tokens every example has besides its user and assistant contents. */
  private readonly fixed: number;
  private readonly answerOf: (fields: Document['fields']) => string;
  private readonly answerTokens: ((fields: Document['fields'], answer: string) => number) | undefined;
  private readonly dump: DatasetSettings['dump'];
  private readonly modelConfig: DatasetSettings['modelConfig'];
  private readonly mapped: Set<string>;
  private readonly trainWriter: LineWriter;
  private readonly testWriter: LineWriter | undefined;
  // The line's constant parts, encoded once.
  private readonly lineHead: Buffer;
  private readonly lineMiddle: Buffer;
  private readonly lineTail: Buffer;
  private readonly headQuote: Buffer;
  private readonly quoteMiddle: Buffer;

  constructor(input: ExamplePassInput) {
    const { modelConfig, dump } = input.settings;
    const { model, prompt } = input;
    this.errors = input.errors;
    this.opts = input.opts;
    this.total = input.scan.ids.length;
    this.duplicateOf = input.scan.duplicateOf;
    this.mayRepeat = input.scan.mayRepeat;
    this.testSet = input.testSet;
    this.prompt = prompt;
    this.splitPrefix = prompt?.prefix && splitsAfter(prompt.beforeText) ? prompt.prefix : undefined;
    this.model = model;
    this.counter = model ? tokenCounter(model.encoding) : undefined;
    this.fixed = this.counter ? fixedTokens(this.counter, modelConfig.systemPrompt) : 0;
    this.answerOf = compileAssistantContent(dump, modelConfig.mappedFields);
    this.answerTokens = this.counter
      ? compileAnswerTokens(dump, modelConfig.mappedFields, this.counter)
      : undefined;
    this.dump = dump;
    this.modelConfig = modelConfig;
    this.mapped = new Set(modelConfig.mappedFields);
    this.trainWriter = input.trainWriter;
    this.testWriter = input.testWriter;
    const lineParts = exampleLineParts(modelConfig.systemPrompt);
    this.lineHead = Buffer.from(lineParts.head);
    this.lineMiddle = Buffer.from(lineParts.middle);
    this.lineTail = Buffer.from(lineParts.tail);
    this.headQuote = Buffer.from(`${lineParts.head}"`);
    this.quoteMiddle = Buffer.from(`"${lineParts.middle}`);
    this.emptyCounts = new Map(modelConfig.mappedFields.map((f) => [f, 0]));
  }

  /**
   * Handles a block's items from position `from` on. Stops after an item whose write the caller must
   * wait for, and says where to go on; the loop stays in this method, out of the async caller.
   */
  handleBlock(block: readonly unknown[], from: number): { write: Promise<void>; next: number } | undefined {
    for (let at = from; at < block.length; at++) {
      const write = this.handle(block[at]);
      if (write) return { write, next: at + 1 };
    }
    return undefined;
  }

  /** Checks, builds, counts and writes one source item; returns the write to wait for, if any. */
  private handle(item: unknown): Promise<void> | undefined {
    const { trainTokens, trainIndexes, emptyCounts, seenExamples, duplicateIds } = this;
    const index = ++this.index;
    if (index % 1000 === 0) this.opts.onProgress?.({ phase: 'build', done: index, total: this.total });
    const parsed = parseDocument(item);
    if (!parsed.success) {
      this.errors.add({ code: 'invalid_document', index, message: parsed.message });
      return undefined;
    }
    const doc: Document = parsed.data;
    this.parsedDocs++;
    const before = this.errors.size;
    const documentId = doc.id;

    const first = this.duplicateOf.get(index);
    if (first !== undefined) {
      this.errors.add({
        code: 'duplicate_document_id',
        documentId,
        index,
        field: 'id',
        message: `id "${doc.id}" is also used by document #${first + 1}`,
      });
    }

    // The user prompt is head + body: the prefix and the text when split (above; the text must start
    // a piece), else '' and the filled prompt. A plain prompt (the usual case) holds no control
    // character and has a cheap exact encoding, made when the line is written; others are encoded
    // whole here, for the control-character check. Counting the prompt's tokens tells whether it is
    // plain, in the same pass (countChecked).
    let head = '';
    let body: string | undefined;
    if (this.splitPrefix && startsPiece(doc.text)) {
      head = this.splitPrefix(doc);
      body = doc.text;
    } else if (this.prompt) body = this.prompt.fill(doc);
    let promptTokens = 0;
    let plain = false;
    if (body !== undefined) {
      if (this.counter) {
        const headCount = this.counter.countChecked(head);
        const bodyCount = this.counter.countChecked(body);
        promptTokens = headCount.tokens + bodyCount.tokens;
        plain = headCount.plain && bodyCount.plain;
      } else plain = isPlainText(head) && isPlainText(body);
    }
    const userJson = body === undefined || plain ? undefined : JSON.stringify(head + body);

    if (!/\S/.test(doc.text)) {
      this.errors.add({ code: 'empty_text', documentId, index, field: 'text', message: 'text is empty' });
    }
    const special = findSpecialToken(doc.text);
    if (special) {
      this.errors.add({
        code: 'special_token',
        documentId,
        index,
        field: 'text',
        message: `text contains the special token ${special}`,
      });
    }
    const control = plain
      ? undefined
      : userJson === undefined || jsonMayHoldControlChar(userJson)
        ? findControlChar(doc.text)
        : undefined;
    if (control) {
      this.errors.add({
        code: 'control_character',
        documentId,
        index,
        field: 'text',
        message: `text contains the control character ${control.code} at offset ${control.index}`,
      });
    }
    const fieldNames = Object.keys(doc.fields);
    if (fieldNames.length === 0) {
      this.errors.add({
        code: 'no_fields',
        documentId,
        index,
        field: 'fields',
        message: 'the document has no fields',
      });
    } else if (
      this.dump === 'mapped' &&
      this.mapped.size > 0 &&
      !fieldNames.some((f) => this.mapped.has(f))
    ) {
      this.errors.add({
        code: 'no_mapped_fields_in_document',
        documentId,
        index,
        field: 'fields',
        message: `none of the mapped fields (${this.modelConfig.mappedFields.join(', ')}) is present`,
      });
    }
    for (const name of this.modelConfig.mappedFields) {
      if (isEmptyValue(doc.fields[name])) emptyCounts.set(name, (emptyCounts.get(name) ?? 0) + 1);
    }
    if (body === undefined) {
      if (this.errors.size === before) this.usable++;
      return undefined;
    }

    const answer = this.answerOf(doc.fields);
    const answerSpecial = findSpecialToken(answer);
    if (answerSpecial) {
      const field = fieldNames.find((f) => JSON.stringify(doc.fields[f]).includes(answerSpecial)) ?? 'fields';
      this.errors.add({
        code: 'special_token',
        documentId,
        index,
        field: `fields.${field}`,
        message: `contains the special token ${answerSpecial}`,
      });
    }
    let tokens = 0;
    if (this.counter && this.model && this.answerTokens) {
      tokens = this.fixed + promptTokens + this.answerTokens(doc.fields, answer);
      if (tokens > this.model.maxTokensPerExample) {
        this.errors.add({
          code: 'too_many_tokens',
          documentId,
          index,
          field: 'text',
          message: `the example has ${tokens} tokens; ${this.model.name} takes at most ${this.model.maxTokensPerExample} per example`,
        });
      }
    }
    if (this.errors.size > before) return undefined;
    this.usable++;
    // Once anything is wrong the dataset is invalid: keep checking, stop writing.
    if (this.errors.size > 0) return undefined;

    // The line (exampleLine's text) is encoded straight into the writer's chunk, which feeds the
    // file hash; the duplicate check hashes those bytes (one-shot: no Hash object per line), only for
    // examples whose key another document shares.
    const toTest = this.testWriter !== undefined && this.testSet.has(index);
    const writer = toTest ? this.testWriter : this.trainWriter;
    // Plain parts are escaped without their quotes (the line parts around them supply them).
    const wrote = plain
      ? writer.write(
          this.headQuote,
          escapePlainText(head),
          escapePlainText(body),
          this.quoteMiddle,
          JSON.stringify(answer),
          this.lineTail,
        )
      : writer.write(
          this.lineHead,
          userJson as string,
          this.lineMiddle,
          JSON.stringify(answer),
          this.lineTail,
        );
    if (this.mayRepeat.has(index)) {
      const digest = Number.parseInt(oneShotHash('sha1', writer.lastLine(), 'hex').slice(0, 12), 16);
      if (seenExamples.has(digest)) {
        this.duplicateCount++;
        if (duplicateIds.length < 20) duplicateIds.push(documentId);
      } else seenExamples.add(digest);
    }

    if (toTest) {
      this.testExamples++;
      this.testTokenSum += tokens;
    } else {
      trainTokens.push(tokens);
      trainIndexes.push(index);
      if (this.model) this.billableSum += Math.min(tokens, this.model.maxTokensPerExample);
    }
    return wrote;
  }
}

/** Fixed token cost of an example besides the user and assistant contents (system prompt included). */
function fixedTokens(counter: TokenCounter, systemPrompt: string): number {
  return (
    REPLY_PRIMING_TOKENS +
    3 * TOKENS_PER_MESSAGE +
    counter.count('system') +
    counter.count('user') +
    counter.count('assistant') +
    counter.count(systemPrompt)
  );
}

/**
 * Builds and validates a dataset in two streaming passes, writing `train.jsonl` (and `test.jsonl` when
 * `testPercent` gives any) to storage. Memory holds per-document ids and token counts, never texts.
 * An invalid dataset leaves no files behind.
 */
export async function buildDataset(
  settings: DatasetSettings,
  source: DocumentSource,
  opts: BuildOptions,
): Promise<DatasetBuild> {
  const catalogue = opts.catalogue ?? defaultCatalogue;
  const errors = new IssueList(opts.maxIssues);
  const warnings = new IssueList(opts.maxIssues);
  const { modelConfig, dump } = settings;

  // Settings first: base model and template.
  const modelProblem = baseModelIssue(settings.baseModel, catalogue);
  if (modelProblem) errors.add(modelProblem);
  const model: BaseModel | undefined = modelProblem
    ? undefined
    : findBaseModel(settings.baseModel, catalogue);
  let prompt: PromptTemplate | undefined;
  try {
    prompt = compilePromptTemplate(modelConfig.userPromptTemplate);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    errors.add({ code: 'invalid_template', field: 'modelConfig.userPromptTemplate', message: err.message });
  }
  if (dump === 'mapped' && modelConfig.mappedFields.length === 0) {
    errors.add({
      code: 'no_mapped_fields',
      field: 'modelConfig.mappedFields',
      message: 'dump "mapped" needs at least one mapped field (or use dump "all")',
    });
  }
  for (const [field, text] of [
    ['modelConfig.systemPrompt', modelConfig.systemPrompt],
    ['modelConfig.userPromptTemplate', modelConfig.userPromptTemplate],
  ] as const) {
    const special = findSpecialToken(text);
    if (special)
      errors.add({ code: 'special_token', field, message: `contains the special token ${special}` });
    const control = findControlChar(text);
    if (control)
      errors.add({
        code: 'control_character',
        field,
        message: `contains the control character ${control.code}`,
      });
  }

  // Pass 1: count, ids, the split.
  const scanned = await scan(
    source,
    opts,
    prompt ? exampleKeyFor(prompt, compileAnswerKey(dump, modelConfig.mappedFields)) : undefined,
  );
  const { ids } = scanned;
  const total = ids.length;
  const testSet = chooseTestSet(ids, settings.testPercent, splitSeed(settings));
  if (settings.testPercent > 0 && testSet.size === 0) {
    warnings.add({
      code: 'no_test_examples',
      field: 'testPercent',
      message: `${settings.testPercent}% of ${total} documents rounds to no testing example; no testing file is written`,
    });
  }

  // Pass 2: check, build, count and write each document.
  const trainHash = createHash('sha256');
  const testHash = createHash('sha256');
  const trainWriter = new LineWriter(opts.storage.createWriteStream(opts.trainKey), { hash: trainHash });
  const testWriter = testSet.size
    ? new LineWriter(opts.storage.createWriteStream(opts.testKey), { hash: testHash })
    : undefined;
  const pass = new ExamplePass({
    settings,
    model,
    prompt,
    scan: scanned,
    testSet,
    errors,
    opts,
    trainWriter,
    testWriter,
  });

  try {
    for await (const block of inBlocks(source())) {
      for (let at = 0; at < block.length; ) {
        const pause = pass.handleBlock(block, at);
        if (!pause) break;
        await pause.write;
        at = pause.next;
      }
    }
    await trainWriter.end();
    await testWriter?.end();
  } catch (err) {
    trainWriter.destroy();
    testWriter?.destroy();
    throw err;
  }
  opts.onProgress?.({ phase: 'build', done: total, total });
  const {
    trainTokens,
    trainIndexes,
    usable,
    parsedDocs,
    emptyCounts,
    duplicateCount,
    duplicateIds,
    testExamples,
    testTokenSum,
    billableSum,
  } = pass;

  // Whole-batch checks.
  const trainExamples = trainTokens.length;
  if (errors.size === 0 && trainExamples < MIN_TRAIN_EXAMPLES) {
    errors.add({
      code: 'too_few_training_examples',
      message: `the training file would hold ${trainExamples} examples; at least ${MIN_TRAIN_EXAMPLES} are needed (lower testPercent or add documents)`,
    });
  }
  if (usable < MIN_TRAIN_EXAMPLES && prompt) {
    errors.add({
      code: 'too_few_documents',
      field: 'documents',
      message: `${usable} usable documents of ${total}; at least ${MIN_TRAIN_EXAMPLES} are needed`,
    });
  }
  if (total < RECOMMENDED_DOCUMENTS) {
    warnings.add({
      code: 'few_documents',
      field: 'documents',
      count: total,
      message: `${total} documents; ${RECOMMENDED_DOCUMENTS}–100 are recommended for a useful fine-tune`,
    });
  }
  if (parsedDocs > 0) {
    for (const [name, empty] of emptyCounts) {
      if (empty / parsedDocs > EMPTY_FIELD_WARNING_SHARE) {
        warnings.add({
          code: 'mapped_field_often_empty',
          field: `fields.${name}`,
          count: empty,
          message: `mapped field "${name}" is empty in ${empty} of ${parsedDocs} documents (${Math.round((100 * empty) / parsedDocs)}%)`,
        });
      }
    }
  }
  if (duplicateCount > 0) {
    warnings.add({
      code: 'duplicate_examples',
      count: duplicateCount,
      documentIds: duplicateIds,
      message: `${duplicateCount} examples repeat an earlier example exactly`,
    });
  }
  const tokenList = trainTokens.view();
  if (model) {
    const outliers = tokenOutliers(tokenList);
    if (outliers.length) {
      const outlierIds = outliers
        .slice(0, 20)
        .map((i) => ids[trainIndexes.view()[i] as number] ?? `#${i + 1}`);
      warnings.add({
        code: 'token_length_outliers',
        count: outliers.length,
        documentIds: outlierIds,
        message: `${outliers.length} examples are unusually short or long in tokens (median ${tokenStats(tokenList).median})`,
      });
    }
  }

  const invalid = errors.size > 0;
  if (invalid) {
    await opts.storage.remove(opts.trainKey);
    await opts.storage.remove(opts.testKey);
  }
  let contentHash: string | null = null;
  if (!invalid) {
    contentHash = createHash('sha256')
      .update(`train:${trainHash.digest('hex')}\ntest:${testExamples ? testHash.digest('hex') : ''}`)
      .digest('hex');
  }
  const epochs = invalid || !model ? null : resolveEpochs(trainExamples, settings.job.hyperparameters);
  const billed = epochs === null ? null : BigInt(epochs) * BigInt(billableSum);
  let trainTokenSum = 0n;
  for (const t of tokenList) trainTokenSum += BigInt(t);

  return {
    status: invalid ? 'invalid' : 'ready',
    errors: errors.list(),
    warnings: warnings.list(),
    documents: total,
    baseModel: settings.baseModel,
    trainExamples: invalid ? 0 : trainExamples,
    testExamples: invalid ? 0 : testExamples,
    trainTokens: trainTokenSum,
    testTokens: BigInt(testTokenSum),
    trainTokenStats: tokenStats(tokenList),
    epochs,
    estimatedBilledTokens: billed,
    estimatedCredits:
      billed === null || !model ? null : trainingCredits(billed, model.creditsPerMillionTrainingTokens),
    contentHash,
    shortHash: contentHash ? shortHash(contentHash) : null,
    trainKey: invalid ? null : opts.trainKey,
    testKey: invalid || testExamples === 0 ? null : opts.testKey,
    trainBytes: invalid ? 0 : trainWriter.bytes,
    testBytes: invalid || !testWriter ? 0 : testWriter.bytes,
  };
}
