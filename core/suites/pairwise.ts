/**
 * @file Which differences in one leaderboard column are real: pairs of models compared on the
 * test images both scored (matched by image key), with a paired bootstrap interval of the
 * difference and, for single-result columns, McNemar's exact test on their per-image predictions.
 *
 * A model ties with the column's best when the difference is not significant at 5%: McNemar's
 * p >= 0.05 for single results (correctness is 0/1 per image, McNemar's setting), and for
 * few-shot means over seeds (per-image values are shares of seeds, not 0/1, so McNemar does not
 * apply) when the paired 95% interval of the difference contains 0.
 *
 * Every pair is compared up to `allPairsUpTo` models (45 pairs for 10); beyond, each model only
 * against the best, which is all that marking ties needs: all pairs of 100 models are 4,950
 * bootstraps per column, hours of CPU for a 100 x 40 suite.
 */
import { type ColumnValues, pairedValues } from './columns';
import {
  type Interval,
  type McNemarResult,
  mcnemarExact,
  pairedDifferenceInterval,
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

const ALPHA = 0.05;

export function compareColumn(
  column: { id: string; kind: 'single' | 'seed-mean' },
  entries: readonly ColumnEntry[],
  opts: { resamples: number; seed: number; allPairsUpTo: number },
): { best: string | undefined; ties: Set<string>; comparisons: PairComparison[] } {
  const ties = new Set<string>();
  if (entries.length === 0) return { best: undefined, ties, comparisons: [] };
  const best = entries.reduce((a, b) => (b.acc1 > a.acc1 ? b : a));
  const pairs: [ColumnEntry, ColumnEntry][] = [];
  if (entries.length <= opts.allPairsUpTo) {
    entries.forEach((a, i) => entries.slice(i + 1).forEach((b) => pairs.push([a, b])));
  } else {
    for (const e of entries) if (e !== best) pairs.push([best, e]);
  }
  const comparisons = pairs.map(([a, b]) => compare(column, a, b, opts));
  for (const c of comparisons) {
    const other = c.a === best.model ? c.b : c.b === best.model ? c.a : undefined;
    if (other !== undefined && !significant(c)) ties.add(other);
  }
  return { best: best.model, ties, comparisons };
}

function compare(
  column: { id: string; kind: 'single' | 'seed-mean' },
  a: ColumnEntry,
  b: ColumnEntry,
  opts: { resamples: number; seed: number },
): PairComparison {
  const paired = pairedValues(a.v, b.v);
  return {
    column: column.id,
    a: a.model,
    b: b.model,
    n: paired.a.length,
    difference: pairedDifferenceInterval(paired.a, paired.b, opts),
    ...(column.kind === 'single' ? { mcnemar: mcnemarExact(paired.a, paired.b) } : {}),
  };
}

function significant(c: PairComparison): boolean {
  if (c.mcnemar) return c.mcnemar.pValue < ALPHA;
  return c.difference.low > 0 || c.difference.high < 0;
}
