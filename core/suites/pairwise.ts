/**
 * @file One leaderboard column's statistics: each model's 95% bootstrap interval, and which
 * differences are real: pairs of models compared on the test images both scored (matched by
 * image), with a paired bootstrap interval of the difference and, for single-result columns,
 * McNemar's exact test on their per-image predictions.
 *
 * A model ties with the column's best when the difference is not significant at 5%: McNemar's
 * p >= 0.05 for single results (correctness is 0/1 per image, McNemar's setting), and for
 * few-shot means over seeds (per-image values are shares of seeds, not 0/1, so McNemar does not
 * apply) when the paired 95% interval of the difference contains 0.
 *
 * Every interval resamples the images in key order with the same seed, so models that scored the
 * same images (all of them, unless an image failed for one model) share one set of draws: the
 * column costs one set of draws plus a sum per model and resample, and each pair's interval is
 * the difference of two models' resampled means, the very numbers pairedDifferenceInterval would
 * draw. A model with other images gets its own draws, and its pairs the general path.
 *
 * Every pair is compared up to `allPairsUpTo` models (45 pairs for 10); beyond, each model only
 * against the best, which is all that marking ties needs (4,950 pairs of 100 models would be
 * 4,950 McNemar tests and intervals per column).
 */
import { type ColumnValues, pairedValues, sameImages } from './columns';
import {
  type Interval,
  type McNemarResult,
  differenceInterval,
  mcnemarExact,
  meanInterval,
  pairedDifferenceInterval,
  resampledMeans,
} from './statistics';

export interface PairComparison {
  column: string;
  a: string;
  b: string;
  /** Test images both models scored. */
  n: number;
  /** acc(a) - acc(b) on those images, with its paired 95% bootstrap interval. */
  difference: Interval;
  /** Single-result columns only. */
  mcnemar?: McNemarResult;
}

export interface ColumnEntry {
  model: string;
  acc1: number;
  v: ColumnValues;
}

export interface ColumnStatistics {
  best: string | undefined;
  ties: Set<string>;
  /** Per model: the bootstrap interval of its per-image values' mean. */
  intervals: Map<string, Interval>;
  comparisons: PairComparison[];
}

const ALPHA = 0.05;

export function scoreColumn(
  column: { id: string; kind: 'single' | 'seed-mean' },
  entries: readonly ColumnEntry[],
  opts: { resamples: number; seed: number; allPairsUpTo: number },
): ColumnStatistics {
  const ties = new Set<string>();
  const intervals = new Map<string, Interval>();
  if (entries.length === 0) return { best: undefined, ties, intervals, comparisons: [] };
  const resampled = shareResamples(entries, opts);
  for (const e of entries) intervals.set(e.model, meanInterval(e.v.values, resampled.get(e)!));

  const best = entries.reduce((a, b) => (b.acc1 > a.acc1 ? b : a));
  const pairs: [ColumnEntry, ColumnEntry][] = [];
  if (entries.length <= opts.allPairsUpTo) {
    entries.forEach((a, i) => entries.slice(i + 1).forEach((b) => pairs.push([a, b])));
  } else {
    for (const e of entries) if (e !== best) pairs.push([best, e]);
  }
  const comparisons = pairs.map(([a, b]) => compare(column, a, b, resampled, opts));
  for (const c of comparisons) {
    const other = c.a === best.model ? c.b : c.b === best.model ? c.a : undefined;
    if (other !== undefined && !significant(c)) ties.add(other);
  }
  return { best: best.model, ties, intervals, comparisons };
}

/** Each entry's resampled means, one set of draws per group of entries with the same images. */
function shareResamples(
  entries: readonly ColumnEntry[],
  opts: { resamples: number; seed: number },
): Map<ColumnEntry, Float64Array> {
  const groups: ColumnEntry[][] = [];
  for (const e of entries) {
    const group = groups.find((g) => sameImages(g[0]!.v, e.v));
    if (group) group.push(e);
    else groups.push([e]);
  }
  const out = new Map<ColumnEntry, Float64Array>();
  for (const group of groups) {
    const means = resampledMeans(
      group.map((e) => e.v.values),
      opts.resamples,
      opts.seed,
    );
    group.forEach((e, i) => out.set(e, means[i]!));
  }
  return out;
}

function compare(
  column: { id: string; kind: 'single' | 'seed-mean' },
  a: ColumnEntry,
  b: ColumnEntry,
  resampled: Map<ColumnEntry, Float64Array>,
  opts: { resamples: number; seed: number },
): PairComparison {
  const same = sameImages(a.v, b.v);
  const paired = same ? { a: a.v.values, b: b.v.values } : pairedValues(a.v, b.v);
  const difference = same
    ? differenceInterval(paired.a, paired.b, resampled.get(a)!, resampled.get(b)!)
    : pairedDifferenceInterval(paired.a, paired.b, opts);
  return {
    column: column.id,
    a: a.model,
    b: b.model,
    n: paired.a.length,
    difference,
    ...(column.kind === 'single' ? { mcnemar: mcnemarExact(paired.a, paired.b) } : {}),
  };
}

function significant(c: PairComparison): boolean {
  if (c.mcnemar) return c.mcnemar.pValue < ALPHA;
  return c.difference.low > 0 || c.difference.high < 0;
}
