import type { Document } from '@tuneline/contracts';
import type { BaseModel } from './catalogue.ts';
import { RepeatCheck } from './example-warnings.ts';
import {
  compileAnswerTokens,
  compileAssistantContent,
  escapePlainText,
  exampleLineParts,
  isEmptyValue,
  isPlainText,
  type PromptTemplate,
} from './examples.ts';
import type { IssueList } from './issues.ts';
import type { ScanPass } from './scan.ts';
import type { DatasetSettings } from './settings.ts';
import { type BuildProgress, parseDocument } from './source.ts';
import { IntList } from './stats.ts';
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
import type { LineWriter } from './writer.ts';

/** What a build pass starts from: the build's settings and the scan's findings. */
export interface ExamplePassInput {
  settings: DatasetSettings;
  model: BaseModel | undefined;
  prompt: PromptTemplate | undefined;
  scan: ScanPass;
  testSet: Set<number>;
  errors: IssueList;
  onProgress: ((p: BuildProgress) => void) | undefined;
  trainWriter: LineWriter;
  testWriter: LineWriter | undefined;
}

/**
 * The build pass's work per document, and what it gathers. A method called per document rather than the
 * body of a loop inside buildDataset: V8 optimised that whole async function (85–105 ms of compiler time
 * each) once or twice in each of a process's first builds, as the loop got hot, and dropped the code
 * when the build ended. This method takes ~16 ms to compile and keeps its code across builds.
 */
export class ExamplePass {
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
  /** Examples that repeat an earlier one, checked only for those the scan found may repeat. */
  readonly repeats = new RepeatCheck();

  private readonly errors: IssueList;
  private readonly onProgress: ((p: BuildProgress) => void) | undefined;
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
    this.onProgress = input.onProgress;
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
    const { trainTokens, trainIndexes, emptyCounts } = this;
    const index = ++this.index;
    if (index % 1000 === 0) this.onProgress?.({ phase: 'build', done: index, total: this.total });
    const parsed = parseDocument(item);
    if (!parsed.success) {
      for (const { field, message } of parsed.problems) {
        this.errors.add({
          code: 'invalid_document',
          index,
          ...(parsed.line !== undefined ? { line: parsed.line } : {}),
          ...(field !== undefined ? { field } : {}),
          message,
        });
      }
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
    // file hash; the repeat check hashes those bytes, only for examples whose key another document
    // shares.
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
    if (this.mayRepeat.has(index)) this.repeats.check(writer.lastLine(), index);

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
