/**
 * The two published hyperparameter searches, over a `score` callback (fit on the fit set, return
 * val accuracy) so they are testable without fitting anything. Each memoises its scores: both
 * protocols re-evaluate points they already scored, and a fit is deterministic.
 */

export const COOP_C_GRID = [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6];
export const COOP_BINARY_SEARCH_STEPS = 8;

export interface Selection {
  value: number;
  valAccuracy: number;
  /** Every value scored, in the order it was first scored. */
  scored: { value: number; valAccuracy: number }[];
}

function memoised(score: (v: number) => Promise<number>) {
  const seen = new Map<number, number>();
  const scored: Selection['scored'] = [];
  const get = async (v: number) => {
    let acc = seen.get(v);
    if (acc === undefined) {
      acc = await score(v);
      seen.set(v, acc);
      scored.push({ value: v, valAccuracy: acc });
    }
    return acc;
  };
  return { get, scored };
}

/**
 * CoOp's linear-probe search for scikit-learn's C: score the grid (argmax: the first best in
 * grid order), then `steps` rounds on [peak/10, peak*10]: score both ends, keep the better end
 * (the left one on a tie) and move the other to the log-space midpoint. The C chosen is the
 * better end of the last round.
 */
export async function coopSearchC(
  score: (c: number) => Promise<number>,
  grid: readonly number[] = COOP_C_GRID,
  steps = COOP_BINARY_SEARCH_STEPS,
): Promise<Selection> {
  if (grid.length === 0) throw new Error('probe: the C grid is empty');
  const m = memoised(score);
  let best = grid[0]!;
  for (const c of grid) if ((await m.get(c)) > (await m.get(best))) best = c;
  let left = best / 10;
  let right = best * 10;
  for (let i = 0; i < steps; i++) {
    const accLeft = await m.get(left);
    const accRight = await m.get(right);
    const mid = 10 ** ((Math.log10(left) + Math.log10(right)) / 2);
    if (accLeft < accRight) {
      best = right;
      left = mid;
    } else {
      best = left;
      right = mid;
    }
  }
  return { value: best, valAccuracy: await m.get(best), scored: m.scored };
}

/** numpy.logspace(start, stop, num): exponents i * step + start, the last one exactly stop. */
export function logspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => 10 ** (i === num - 1 ? stop : i * step + start));
}

export const CLIP_BENCHMARK_WD_GRID = logspace(-6, 2, 97);

/**
 * CLIP_benchmark's weight-decay search (WeightDecayTuner.tune_weight_decay / find_peak): score 7
 * evenly spaced grid points, then around the peak index score peak - span, peak, peak + span
 * (clamped to the grid) for span = 8, 4, 2, 1. find_peak keeps the first strictly better score
 * and starts from index 0 with accuracy 0, as the original does. For a grid of another length
 * the 7 starting points are spaced (len - 1) / 6 apart and the span starts at half of that.
 */
export async function clipBenchmarkSearchWeightDecay(
  score: (wd: number) => Promise<number>,
  grid: readonly number[] = CLIP_BENCHMARK_WD_GRID,
): Promise<Selection> {
  if (grid.length === 0) throw new Error('probe: the weight-decay grid is empty');
  const m = memoised(score);
  const findPeak = async (idxs: readonly number[]) => {
    let bestIdx = 0;
    let maxAcc = 0;
    for (const idx of idxs) {
      const acc = await m.get(grid[idx]!);
      if (maxAcc < acc) [bestIdx, maxAcc] = [idx, acc];
    }
    return bestIdx;
  };
  const spacing = Math.max(1, Math.floor((grid.length - 1) / 6));
  const initial = [
    ...new Set(Array.from({ length: 7 }, (_, i) => Math.min(i * spacing, grid.length - 1))),
  ];
  let peak = await findPeak(initial);
  for (let span = Math.floor(spacing / 2); span > 0; span = Math.floor(span / 2)) {
    const left = Math.max(peak - span, 0);
    const right = Math.min(peak + span, grid.length - 1);
    peak = await findPeak([left, peak, right]);
  }
  return { value: grid[peak]!, valAccuracy: await m.get(grid[peak]!), scored: m.scored };
}
