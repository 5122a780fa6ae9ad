/**
 * @file Base-to-new generalisation, CoCoOp's protocol (Zhou et al. 2022, `subsample_classes` in
 * Dassl's datasets/oxford_pets.py): the class ids sorted, the first ceil(K/2) are the base classes
 * and the rest the new ones. A route trains on the base classes only, then every test image is
 * classified among the classes of its own half (CoCoOp builds one model with the base names for the
 * base test and one with the new names for the new test). Reported: base accuracy, new accuracy
 * and their harmonic mean.
 *
 * A class id here is its position in the plan's class list (core/dataset/plan.ts): the labels
 * found, sorted, or a closed `dataset.classes` list in its given order. CoCoOp's ids are the
 * dataset's class indices in its own order the same way.
 */

import type { Protocol } from '../config/run-spec';

export type { Protocol };

/**
 * What a route adds to its inputsHash for its protocol: nothing for `all-classes`, so the hashes
 * (and stored results) from before protocols existed stay valid, and `{ protocol }` otherwise, so a
 * base-to-new result is never reused as an all-classes one or the other way round.
 */
export function protocolHashPart(protocol: Protocol): { protocol?: Protocol } {
  return protocol === 'all-classes' ? {} : { protocol };
}

export interface ClassHalves {
  /** Class ids 0 .. ceil(K/2) - 1. */
  base: number[];
  /** Class ids ceil(K/2) .. K - 1. */
  new: number[];
}

/** One half's figure: its test images and their top-1 accuracy among that half's classes. */
export interface HalfAccuracy {
  n: number;
  acc1: number;
}

/** What a base-to-new job reports besides its pooled metrics. */
export interface BaseToNewResult {
  baseClasses: number;
  newClasses: number;
  base: HalfAccuracy;
  new: HalfAccuracy;
  /** Harmonic mean of base and new acc1 (0 when either is 0). */
  hm: number;
}

/** CoCoOp's split of K classes; needs K >= 2 so that both halves have a class. */
export function classHalves(numClasses: number): ClassHalves {
  if (!Number.isInteger(numClasses) || numClasses < 2)
    throw new Error(`base-to-new needs at least 2 classes, got ${numClasses}`);
  const m = Math.ceil(numClasses / 2);
  return {
    base: Array.from({ length: m }, (_, i) => i),
    new: Array.from({ length: numClasses - m }, (_, i) => m + i),
  };
}

/** True when class id `c` is a base class of K classes. */
export function isBaseClass(c: number, numClasses: number): boolean {
  return c < Math.ceil(numClasses / 2);
}

export function harmonicMean(a: number, b: number): number {
  return a + b === 0 ? 0 : (2 * a * b) / (a + b);
}

/**
 * A copy of a [n, K] score matrix in which each row keeps only the classes of its label's half;
 * the other half's scores become -Infinity, so no ranking ever picks them. Scoring the masked matrix
 * with the usual metrics is classifying every image among its own half's classes.
 */
export function maskToOwnHalf(
  scores: Float32Array,
  labels: ArrayLike<number>,
  numClasses: number,
): Float32Array {
  const n = labels.length;
  if (scores.length !== n * numClasses)
    throw new Error(`expected ${n}x${numClasses} scores, got ${scores.length}`);
  const m = Math.ceil(numClasses / 2);
  const out = Float32Array.from(scores);
  for (let i = 0; i < n; i++) {
    const base = labels[i]! < m;
    const row = i * numClasses;
    if (base) out.fill(-Infinity, row + m, row + numClasses);
    else out.fill(-Infinity, row, row + m);
  }
  return out;
}

/**
 * Base and new accuracy from a masked score matrix (maskToOwnHalf): top-1 per row, ties to the
 * lower class id as everywhere in clipeval (core/routes/metrics.ts).
 */
export function baseToNewResult(
  masked: Float32Array,
  labels: ArrayLike<number>,
  numClasses: number,
): BaseToNewResult {
  const m = Math.ceil(numClasses / 2);
  const hits = { base: 0, new: 0 };
  const counts = { base: 0, new: 0 };
  for (let i = 0; i < labels.length; i++) {
    const row = i * numClasses;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (masked[row + c]! > masked[row + best]!) best = c;
    const half = labels[i]! < m ? 'base' : 'new';
    counts[half]++;
    if (best === labels[i]) hits[half]++;
  }
  const acc = (h: 'base' | 'new') => (counts[h] === 0 ? 0 : hits[h] / counts[h]);
  return {
    baseClasses: m,
    newClasses: numClasses - m,
    base: { n: counts.base, acc1: acc('base') },
    new: { n: counts.new, acc1: acc('new') },
    hm: harmonicMean(acc('base'), acc('new')),
  };
}
