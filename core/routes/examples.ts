/**
 * @file The images of a split as training examples: one per image, with the embedding rows of
 * its views (row of the center crop first, then augmented views in view order). Few-shot sampling
 * draws images, never individual views.
 */
import type { EmbeddingMatrix } from '../embeddings/reader';
import { sampleFewShot } from './few-shot';

/** One entry per image, sorted by image id; `rows[i]` are the embedding rows of its views. */
export interface Examples {
  labels: Int32Array;
  imageIds: string[];
  rows: number[][];
}

export function groupExamples(m: EmbeddingMatrix): Examples {
  const byImage = new Map<string, { label: number; rows: { view: number; row: number }[] }>();
  m.rows.forEach((r, row) => {
    const e = byImage.get(r.imageId) ?? { label: r.label, rows: [] };
    e.rows.push({ view: r.view, row });
    byImage.set(r.imageId, e);
  });
  const ids = [...byImage.keys()].sort();
  return {
    labels: Int32Array.from(ids, (id) => byImage.get(id)!.label),
    imageIds: ids,
    rows: ids.map((id) =>
      byImage
        .get(id)!
        .rows.sort((a, b) => a.view - b.view)
        .map((v) => v.row),
    ),
  };
}

/** The examples at `indices`, in that order. */
export function selectExamples(e: Examples, indices: readonly number[]): Examples {
  return {
    labels: Int32Array.from(indices, (i) => e.labels[i]!),
    imageIds: indices.map((i) => e.imageIds[i]!),
    rows: indices.map((i) => e.rows[i]!),
  };
}

/**
 * CoOp's k-shot training subset of `train` (the same images for a seed in every run), with a
 * note for each class that has fewer than k images, so a reader knows the figure used fewer.
 */
export function sampleTrainExamples(
  train: Examples,
  classLabels: readonly string[],
  k: number,
  seed: number,
): { examples: Examples; notes: string[] } {
  const sample = sampleFewShot(train.labels, classLabels.length, k, seed, 'train', train.imageIds);
  const notes = sample.shortfalls.map(
    (s) =>
      `class ${classLabels[s.classIndex]} has ${s.available} train images, fewer than ${s.wanted}: all of them were used`,
  );
  return { examples: selectExamples(train, sample.indices), notes };
}
