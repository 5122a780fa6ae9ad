/**
 * @file Tip-Adapter's hyper-parameter search (`search_hp` in the repo's utils.py): every (beta,
 * alpha) of two evenly spaced grids starting at 0.1, beta outer and alpha inner, scored by top-1
 * accuracy on the val features; the first best wins (strict `>`, as the repo's loop). Unlike the
 * repo, whose best starts at accuracy 0 and stays (0, 0) when every point scores 0, the first
 * grid point is the floor, so the chosen pair always lies on the grid.
 */
import { cacheLogits, combineLogits, top1Accuracy } from './tip-logits';

/** `[i * (scale - 0.1) / step + 0.1 for i in range(step)]`. */
export function hpGrid(scale: number, step: number): number[] {
  return Array.from({ length: step }, (_, i) => (i * (scale - 0.1)) / step + 0.1);
}

export interface SearchInput {
  /** Zero-shot logits of the val features [n, numClasses]. */
  clip: Float64Array;
  /** Val features against the cache keys [n, nk]. */
  affinity: Float64Array;
  cacheLabels: Int32Array;
  numClasses: number;
  labels: Int32Array;
  /** [beta, alpha] grid ends and steps. */
  searchScale: readonly [number, number];
  searchStep: readonly [number, number];
}

export interface SearchResult {
  alpha: number;
  beta: number;
  /** The pair's val accuracy. */
  acc: number;
}

/** The grid point of best val accuracy; `onBeta` after each beta row (a heartbeat). */
export async function searchHp(
  s: SearchInput,
  onBeta?: (done: number, total: number) => void | Promise<void>,
): Promise<SearchResult> {
  const betas = hpGrid(s.searchScale[0], s.searchStep[0]);
  const alphas = hpGrid(s.searchScale[1], s.searchStep[1]);
  let best: SearchResult = { alpha: alphas[0]!, beta: betas[0]!, acc: -1 };
  for (const [b, beta] of betas.entries()) {
    // alpha only scales the cache term: one cache-logit matrix per beta serves every alpha.
    const cached = cacheLogits(s.affinity, s.cacheLabels, s.numClasses, beta);
    for (const alpha of alphas) {
      const acc = top1Accuracy(combineLogits(s.clip, cached, alpha), s.labels);
      if (acc > best.acc) best = { alpha, beta, acc };
    }
    await onBeta?.(b + 1, betas.length);
  }
  return best;
}
