/**
 * @file Which leaderboard differences are real: a seeded bootstrap confidence interval of a cell's
 * top-1 accuracy, McNemar's exact test and a paired bootstrap interval of the difference for two
 * models scored on the same test images. Inputs are per-image correctness (1 right, 0 wrong) in
 * one image order shared by both models (predictions.arrow rows, matched by image key).
 *
 * Conventions are the reference libraries': the percentile interval is numpy's default
 * (linear interpolation, `np.percentile`), as `scipy.stats.bootstrap(method='percentile')` takes
 * it; McNemar's exact p-value is statsmodels' `mcnemar(table, exact=True)`: twice the binomial
 * tail of the smaller discordant count under p = 1/2, capped at 1. Tests compare both with
 * scipy/statsmodels on fixed inputs (test/unit/suite-statistics.test.ts).
 */

export interface Interval {
  estimate: number;
  low: number;
  high: number;
}

export interface BootstrapOptions {
  /** Resamples drawn (default 1,000, as CLIP_benchmark-style leaderboards commonly use). */
  resamples?: number;
  /** Seeds the resampling: the same inputs and seed give the same interval, bit for bit. */
  seed?: number;
  /** Coverage (default 0.95). */
  level?: number;
}

/**
 * A small, fast, seeded generator (mulberry32): resampling needs reproducibility, not
 * cryptographic quality, and one stream per seed keeps intervals stable across runs.
 */
export function seededUniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Calls `fn` with each resample's indices (n drawn with replacement), one resample at a time in
 * one reused buffer: memory is n indices whatever the resample count (a matrix of all resamples
 * would be 200 MB for 1,000 resamples of 50,000 test images). `fn` must not keep `idx`.
 */
export function forEachResample(
  n: number,
  resamples: number,
  seed: number,
  fn: (idx: Uint32Array, r: number) => void,
): void {
  const next = seededUniform(seed);
  const idx = new Uint32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(next() * n);
    fn(idx, r);
  }
}

/** The resampled index sets as rows (for tests that hand them to numpy): forEachResample's draws. */
export function bootstrapIndices(n: number, resamples: number, seed: number): Uint32Array[] {
  const rows: Uint32Array[] = [];
  forEachResample(n, resamples, seed, (idx) => rows.push(idx.slice()));
  return rows;
}

/** numpy's default percentile (linear interpolation between closest ranks), q in [0, 100]. */
export function percentile(values: readonly number[] | Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const at = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

const mean = (xs: ArrayLike<number>): number => {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i]!;
  return xs.length === 0 ? NaN : sum / xs.length;
};

function percentileInterval(estimate: number, stats: Float64Array, level: number): Interval {
  const tail = ((1 - level) / 2) * 100;
  return { estimate, low: percentile(stats, tail), high: percentile(stats, 100 - tail) };
}

/**
 * Each series' mean in every resample, all series resampled by the same draws (they must have
 * one length n: one image order): the draws are made once, however many series share them.
 * A leaderboard column's models share them, so 100 models cost one set of draws, not 100, and
 * their paired differences come out of the same numbers (differenceInterval).
 */
export function resampledMeans(
  series: readonly ArrayLike<number>[],
  resamples: number,
  seed: number,
): Float64Array[] {
  const n = series[0]?.length ?? 0;
  if (series.some((s) => s.length !== n))
    throw new Error('resampled series differ in length: they must share one image order');
  const out = series.map(() => new Float64Array(resamples));
  // One element type for the hot loop (inputs come as Uint8Array, Float64Array or arrays; a loop
  // that sees several stays slow); the same sums in the same order as mean(), so the same bits.
  const values = series.map((s) => Float64Array.from(s));
  forEachResample(n, resamples, seed, (idx, r) => {
    for (let s = 0; s < values.length; s++) {
      const v = values[s]!;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += v[idx[i]!]!;
      out[s]![r] = n === 0 ? NaN : sum / n;
    }
  });
  return out;
}

/** The percentile interval of a mean from its resampled means (resampledMeans). */
export function meanInterval(
  values: ArrayLike<number>,
  resampled: Float64Array,
  level = 0.95,
): Interval {
  return percentileInterval(mean(values), resampled, level);
}

/** The paired interval of mean(a) - mean(b) from both series' means under the same draws. */
export function differenceInterval(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  resampledA: Float64Array,
  resampledB: Float64Array,
  level = 0.95,
): Interval {
  const stats = resampledA.map((m, r) => m - resampledB[r]!);
  return percentileInterval(mean(a) - mean(b), stats, level);
}

/** The bootstrap interval of the mean of `correct` (top-1 accuracy), over test images. */
export function accuracyInterval(
  correct: ArrayLike<number>,
  opts: BootstrapOptions = {},
): Interval {
  const { resamples = 1000, seed = 0, level = 0.95 } = opts;
  return meanInterval(correct, resampledMeans([correct], resamples, seed)[0]!, level);
}

/**
 * The paired bootstrap interval of acc(a) - acc(b): each resample draws the same images for both
 * models, so what the images share (easy or hard ones) cancels out of the difference.
 */
export function pairedDifferenceInterval(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  opts: BootstrapOptions = {},
): Interval {
  if (a.length !== b.length)
    throw new Error(`paired samples differ in length (${a.length} and ${b.length})`);
  const { resamples = 1000, seed = 0, level = 0.95 } = opts;
  const [ra, rb] = resampledMeans([a, b], resamples, seed);
  return differenceInterval(a, b, ra!, rb!, level);
}

export interface McNemarResult {
  /** Images a got right and b wrong. */
  onlyA: number;
  /** Images b got right and a wrong. */
  onlyB: number;
  pValue: number;
}

/** McNemar's exact test of two models on the same images (statsmodels' exact=True). */
export function mcnemarExact(a: ArrayLike<number>, b: ArrayLike<number>): McNemarResult {
  if (a.length !== b.length)
    throw new Error(`paired samples differ in length (${a.length} and ${b.length})`);
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && !b[i]) onlyA++;
    else if (!a[i] && b[i]) onlyB++;
  }
  const n = onlyA + onlyB;
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialCdfHalf(Math.min(onlyA, onlyB), n));
  return { onlyA, onlyB, pValue };
}

/**
 * P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (log C(n, i) by its recurrence), so
 * tens of thousands of discordant images neither overflow nor underflow.
 */
export function binomialCdfHalf(k: number, n: number): number {
  if (k >= n) return 1;
  const logHalfN = n * Math.log(0.5);
  const terms: number[] = [];
  let logC = 0;
  for (let i = 0; i <= k; i++) {
    terms.push(logC + logHalfN);
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  const top = terms.reduce((m, t) => Math.max(m, t), -Infinity);
  return Math.exp(top) * terms.reduce((s, t) => s + Math.exp(t - top), 0);
}
