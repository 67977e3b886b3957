/** Token-length statistics and the warnings shared by the builder and the file validator. */

export interface TokenStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  median: number;
  p90: number;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export function tokenStats(values: ArrayLike<number>): TokenStats {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, min: 0, max: 0, mean: 0, median: 0, p90: 0 };
  let sum = 0;
  for (const v of sorted) sum += v;
  const mid = Math.floor(n / 2);
  const median =
    n % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return {
    count: n,
    min: sorted[0] as number,
    max: sorted[n - 1] as number,
    mean: Math.round((sum / n) * 100) / 100,
    median,
    p90: percentile(sorted, 90),
  };
}

/**
 * Indexes of token-length outliers: outside Tukey's far fences (Q1 − 3·IQR, Q3 + 3·IQR) and also at
 * least twice (or at most half) the median, so uniform files with a tiny IQR do not flag everything.
 */
export function tokenOutliers(values: ArrayLike<number>): number[] {
  if (values.length < 10) return [];
  const sorted = Float64Array.from(values).sort();
  const q1 = percentile(sorted, 25);
  const q3 = percentile(sorted, 75);
  const median = percentile(sorted, 50);
  const iqr = q3 - q1;
  const high = Math.max(q3 + 3 * iqr, 2 * median);
  const low = Math.min(q1 - 3 * iqr, median / 2);
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v > high || v < low) out.push(i);
  }
  return out;
}

/** A growable Int32Array: per-example token counts without a boxed number per example. */
export class IntList {
  private data = new Int32Array(1024);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}
