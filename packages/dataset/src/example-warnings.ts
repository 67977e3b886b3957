import { hash as oneShotHash } from 'node:crypto';
import type { DatasetIssue } from './issues.ts';
import { tokenOutliers, tokenStats } from './stats.ts';

/**
 * The warnings about a set of examples as a whole: exact repeats and token-length outliers. One
 * implementation for the dataset builder (the worker and `tuneline build-dataset`) and the file
 * validator (`tuneline validate`), so the same examples get the same warnings, with the same counts,
 * messages and limits. Callers refer to an example by a number of their own (the builder by the
 * document's position in the request, the validator by line number) and say how a warning names
 * examples: by document id (`documentIds`) or by line (`lines`).
 */

/** Examples a warning names at most. */
export const EXAMPLES_NAMED = 20;

/** How a warning names the examples it concerns, given the callers' numbers for them. */
export type ExampleNames = (
  refs: number[],
) => Pick<DatasetIssue, 'documentIds'> | Pick<DatasetIssue, 'lines'>;

/** Finds examples whose line repeats an earlier one exactly, keeping a 48-bit digest per line, not lines. */
export class RepeatCheck {
  private readonly seen = new Set<number>();
  /** Examples that repeat an earlier one. */
  count = 0;
  /** The first EXAMPLES_NAMED of them. */
  readonly named: number[] = [];

  /** One example's line (its JSONL bytes or text), referred to as `ref`. */
  check(line: Uint8Array | string, ref: number): void {
    // First 48 bits of the SHA-1 (one-shot: no Hash object per line), a small integer for the set.
    const digest = Number.parseInt(oneShotHash('sha1', line, 'hex').slice(0, 12), 16);
    if (this.seen.has(digest)) {
      this.count++;
      if (this.named.length < EXAMPLES_NAMED) this.named.push(ref);
    } else this.seen.add(digest);
  }
}

/**
 * The `duplicate_examples` warning (from `repeats`) and the `token_length_outliers` warning (over
 * `tokens`, the examples' token counts, where `refs[i]` refers to the example of `tokens[i]`).
 */
export function exampleWarnings(
  repeats: RepeatCheck,
  tokens: ArrayLike<number>,
  refs: ArrayLike<number>,
  names: ExampleNames,
): DatasetIssue[] {
  const warnings: DatasetIssue[] = [];
  if (repeats.count > 0) {
    warnings.push({
      code: 'duplicate_examples',
      count: repeats.count,
      ...names(repeats.named),
      message: `${repeats.count} examples repeat an earlier example exactly`,
    });
  }
  const outliers = tokenOutliers(tokens);
  if (outliers.length) {
    warnings.push({
      code: 'token_length_outliers',
      count: outliers.length,
      ...names(outliers.slice(0, EXAMPLES_NAMED).map((i) => refs[i] as number)),
      message: `${outliers.length} examples are unusually short or long in tokens (median ${tokenStats(tokens).median})`,
    });
  }
  return warnings;
}
