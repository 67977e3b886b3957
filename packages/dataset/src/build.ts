import { createHash } from 'node:crypto';
import { type Clock, processClock } from '@tuneline/contracts';
import { type Catalogue, defaultCatalogue, resolveEpochsFor, trainingCredits } from './catalogue.ts';
import { ExamplePass } from './example-pass.ts';
import { exampleWarnings } from './example-warnings.ts';
import { compileAnswerKey } from './examples.ts';
import { shortHash } from './hash.ts';
import { type DatasetIssue, IssueList } from './issues.ts';
import { exampleKeyFor, scan } from './scan.ts';
import { checkSettings, type DatasetSettings } from './settings.ts';
import { type BuildProgress, type DocumentSource, inBlocks } from './source.ts';
import { chooseTestSet, splitSeed, stableTestSet } from './split.ts';
import { type TokenStats, tokenStats } from './stats.ts';
import type { DatasetStorage } from './storage.ts';
import { LineWriter } from './writer.ts';

// The build in modules: settings.ts checks the request's settings, source.ts reads a document source in
// blocks, scan.ts is the first pass (ids, repeated ids, examples that may repeat), split.ts chooses the
// testing documents, example-pass.ts checks, builds, counts and writes each document; this file drives
// the passes and makes the whole-batch checks.

export const MIN_TRAIN_EXAMPLES = 10;
export const RECOMMENDED_DOCUMENTS = 50;
/** A mapped field empty in more than this share of documents gets a warning. */
export const EMPTY_FIELD_WARNING_SHARE = 0.2;

export interface BuildOptions {
  storage: DatasetStorage;
  trainKey: string;
  testKey: string;
  catalogue?: Catalogue;
  onProgress?(p: BuildProgress): void;
  /** Issues of each kind (errors, warnings) kept at most. */
  maxIssues?: number;
  /**
   * A versioned dataset's split seed (its training profile): testing membership per document id
   * (`stableTestSet`), so later versions keep earlier testing documents in testing. Without it, the
   * request's settings seed the exact-count split.
   */
  stableSplitSeed?: string;
  /** The one clock the date rules read (issue 21.5): a base model past `trainingClosesAt` is an error. */
  clock?: Clock;
  /**
   * The provider the dataset trains at, whose `trainingClosesAt` applies (issue 21.2: dates are per
   * provider); null or omitted: the model's own.
   */
  provider?: string | null;
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
  /** SHA-256 of each written file (null when not written): what a read of the file is checked against. */
  trainSha256: string | null;
  testSha256: string | null;
  /** Storage keys of the written files (null when not written). */
  trainKey: string | null;
  testKey: string | null;
  trainBytes: number;
  testBytes: number;
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

  const { model, prompt } = checkSettings(
    settings,
    catalogue,
    errors,
    (opts.clock ?? processClock()).now(),
    opts.provider ?? null,
  );

  // Pass 1: count, ids, the split.
  const scanned = await scan(
    source,
    prompt ? exampleKeyFor(prompt, compileAnswerKey(dump, modelConfig.mappedFields)) : undefined,
    opts.onProgress,
  );
  const { ids } = scanned;
  const total = ids.length;
  const testSet =
    opts.stableSplitSeed === undefined
      ? chooseTestSet(ids, settings.testPercent, splitSeed(settings))
      : stableTestSet(ids, settings.testPercent, opts.stableSplitSeed);
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
    onProgress: opts.onProgress,
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
  const tokenList = trainTokens.view();
  for (const warning of exampleWarnings(pass.repeats, tokenList, trainIndexes.view(), (refs) => ({
    documentIds: refs.map((i) => ids[i] ?? `#${i + 1}`),
  })))
    warnings.add(warning);

  const invalid = errors.size > 0;
  if (invalid) {
    await opts.storage.remove(opts.trainKey);
    await opts.storage.remove(opts.testKey);
  }
  let contentHash: string | null = null;
  let trainSha256: string | null = null;
  let testSha256: string | null = null;
  if (!invalid) {
    trainSha256 = trainHash.digest('hex');
    testSha256 = testExamples ? testHash.digest('hex') : null;
    contentHash = createHash('sha256')
      .update(`train:${trainSha256}\ntest:${testSha256 ?? ''}`)
      .digest('hex');
  }
  const epochs =
    invalid || !model ? null : resolveEpochsFor(model, trainExamples, settings.job.hyperparameters);
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
    trainSha256,
    testSha256,
    trainKey: invalid ? null : opts.trainKey,
    testKey: invalid || testExamples === 0 ? null : opts.testKey,
    trainBytes: invalid ? 0 : trainWriter.bytes,
    testBytes: invalid || !testWriter ? 0 : testWriter.bytes,
  };
}
