// The two statistics an evaluation reports: a Wilson score interval for a proportion, and the exact
// McNemar test for paired binary outcomes.

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/** Wilson score interval of k successes in n trials; [0, 1] when n = 0. */
export function wilsonInterval(k: number, n: number, z = Z95): { low: number; high: number } {
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // In exact arithmetic the interval ends at 0 when k = 0 and at 1 when k = n; floating point misses both.
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

/**
 * Exact McNemar test: under "both models are equally good", each of the b + c discordant pairs (one
 * right, the other wrong) is equally likely to go either way, so min(b, c) is binomial(b + c, 1/2).
 * Two-sided p = min(1, 2 · P(X ≤ min(b, c))); 1 when there is no discordant pair.
 */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // Sum C(n, i) / 2^n for i = 0..k in log space (2^-n underflows past n ≈ 1074).
  let logTerm = -n * Math.LN2; // log(C(n, 0) / 2^n)
  let max = logTerm;
  const logs = [logTerm];
  for (let i = 0; i < k; i++) {
    logTerm += Math.log(n - i) - Math.log(i + 1);
    logs.push(logTerm);
    if (logTerm > max) max = logTerm;
  }
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  return Math.min(1, 2 * Math.exp(max + Math.log(sum)));
}
