/**
 * @file Tip-Adapter's decision rule (Zhang et al., ECCV 2022; github.com/gaopengcuhk/Tip-Adapter,
 * main.py): a cache of L2-normalised few-shot train features (keys) and their one-hot labels
 * (values) adds to CLIP's zero-shot logits
 *
 *   clip_logits  = logit_scale * f @ W_zs^T                  W_zs: class prototypes [C, D]
 *   affinity     = f @ keys^T                                 [n, NK]
 *   cache_logits = exp(-beta * (1 - affinity)) @ values       [n, C]
 *   tip_logits   = clip_logits + alpha * cache_logits
 *
 * The one-hot values are held as one class per key: `@ values` is a sum into the key's column.
 * Sums run in float64 (JS numbers); matrices are row-major.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** The cache: its keys (rows [nk, dim]: features, or Tip-Adapter-F's trained weights) and classes. */
export interface TipCache {
  keys: Float32Array | Float64Array;
  /** The class of each key (its one-hot value's column). */
  labels: Int32Array;
  dim: number;
}

/** `a @ b^T` for row-major a [n, dim] and b [m, dim]: [n, m]. */
export function matmulTransposed(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dim: number,
): Float64Array {
  const n = a.length / dim;
  const m = b.length / dim;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const row = i * dim;
    for (let j = 0; j < m; j++) {
      const col = j * dim;
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += a[row + d]! * b[col + d]!;
      out[i * m + j] = dot;
    }
  }
  return out;
}

/** logit_scale * f @ prototypes^T: CLIP's zero-shot logits [n, C]. */
export function clipLogits(
  features: ArrayLike<number>,
  prototypes: ArrayLike<number>,
  dim: number,
  logitScale: number,
): Float64Array {
  const out = matmulTransposed(features, prototypes, dim);
  for (let i = 0; i < out.length; i++) out[i]! *= logitScale;
  return out;
}

/** exp(-beta * (1 - affinity)) @ values, for affinities [n, nk]: [n, numClasses]. */
export function cacheLogits(
  affinity: Float64Array,
  cacheLabels: Int32Array,
  numClasses: number,
  beta: number,
): Float64Array {
  const nk = cacheLabels.length;
  const n = affinity.length / nk;
  const out = new Float64Array(n * numClasses);
  for (let i = 0; i < n; i++) {
    const row = i * nk;
    const outRow = i * numClasses;
    for (let j = 0; j < nk; j++)
      out[outRow + cacheLabels[j]!]! += Math.exp(-beta * (1 - affinity[row + j]!));
  }
  return out;
}

/** clip + alpha * cache, elementwise. */
export function combineLogits(
  clip: Float64Array,
  cache: Float64Array,
  alpha: number,
): Float64Array {
  const out = new Float64Array(clip.length);
  for (let i = 0; i < clip.length; i++) out[i] = clip[i]! + alpha * cache[i]!;
  return out;
}

/** Tip-Adapter's logits [n, numClasses] of features [n, dim]. */
export function tipLogits(
  features: ArrayLike<number>,
  prototypes: ArrayLike<number>,
  cache: TipCache,
  opts: { numClasses: number; logitScale: number; alpha: number; beta: number },
): Float64Array {
  const clip = clipLogits(features, prototypes, cache.dim, opts.logitScale);
  const affinity = matmulTransposed(features, cache.keys, cache.dim);
  const cached = cacheLogits(affinity, cache.labels, opts.numClasses, opts.beta);
  return combineLogits(clip, cached, opts.alpha);
}

/** Top-1 accuracy of logits [n, numClasses] (ties to the lower class, as torch's topk). */
export function top1Accuracy(logits: ArrayLike<number>, labels: Int32Array): number {
  const n = labels.length;
  if (n === 0) return 0;
  const k = logits.length / n;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / n;
}

/**
 * Tip-Adapter's logits of many features as float32 scores, a block of rows at a time with a
 * yield between blocks (the worker's heartbeats go on while a large test split is scored), so
 * the [n, nk] affinities never exist whole.
 */
export async function tipScores(
  features: Float32Array,
  prototypes: Float32Array,
  cache: TipCache,
  opts: { numClasses: number; logitScale: number; alpha: number; beta: number },
): Promise<Float32Array> {
  const { dim } = cache;
  const n = features.length / dim;
  const out = new Float32Array(n * opts.numClasses);
  const BLOCK = 256;
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    const block = features.subarray(start * dim, end * dim);
    out.set(tipLogits(block, prototypes, cache, opts), start * opts.numClasses);
    if (end < n) await yieldToEventLoop();
  }
  return out;
}
