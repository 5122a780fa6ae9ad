/**
 * @file Few-shot subsets as CoOp builds them: k images per class drawn without replacement, the
 * same subset for a given seed in every run. Each class draws from its own generator
 * (few-shot, purpose, seed, k, class) over its own rows sorted by a stable id, so a class's sample
 * depends only on that class's images: neither on row order nor on images added to other classes.
 */
import { seededRandom, shuffledIndices } from '../util/random';

/** The rows a few-shot draw took. */
export interface FewShotSample {
  /** Row indices of the sample, ascending. */
  indices: number[];
  /** Images taken per class. */
  perClass: number[];
  /** Classes with fewer than k rows: all of their rows were taken. */
  shortfalls: { classIndex: number; available: number; wanted: number }[];
}

/**
 * @param ids a stable id per row (e.g. image ids) to sort each class's rows by; without it rows
 *   keep their order, so the sample then depends on the order rows arrive in.
 */
export function sampleFewShot(
  labels: ArrayLike<number>,
  numClasses: number,
  k: number,
  seed: number,
  purpose = 'train',
  ids?: readonly string[],
): FewShotSample {
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`few-shot k must be an integer >= 1, got ${k}`);
  if (ids && ids.length !== labels.length)
    throw new Error(`few-shot: ${ids.length} ids for ${labels.length} rows`);
  const rowsByClass = Array.from({ length: numClasses }, () => [] as number[]);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    const rows = rowsByClass[y];
    if (!rows)
      throw new Error(`few-shot: label ${y} of row ${i} is not a class 0..${numClasses - 1}`);
    rows.push(i);
  }
  const indices: number[] = [];
  const perClass: number[] = [];
  const shortfalls: FewShotSample['shortfalls'] = [];
  rowsByClass.forEach((rows, c) => {
    if (ids) rows.sort((a, b) => compareIds(ids[a]!, ids[b]!) || a - b);
    const rand = seededRandom('few-shot', purpose, seed, k, c);
    const take = shuffledIndices(rows.length, rand).slice(0, k);
    indices.push(...take.map((j) => rows[j]!));
    perClass.push(take.length);
    if (rows.length < k) shortfalls.push({ classIndex: c, available: rows.length, wanted: k });
  });
  return { indices: indices.sort((a, b) => a - b), perClass, shortfalls };
}

/** CoOp's few-shot validation set: min(k, 4) images per class from the val split. */
export function fewShotValidation(
  labels: ArrayLike<number>,
  numClasses: number,
  k: number,
  seed: number,
  ids?: readonly string[],
): FewShotSample {
  return sampleFewShot(labels, numClasses, Math.min(k, 4), seed, 'val', ids);
}

/** Code-unit order: the same in every locale, unlike localeCompare. */
const compareIds = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
