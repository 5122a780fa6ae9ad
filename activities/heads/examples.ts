import type { EmbeddingMatrix } from '../embeddings/reader';

/**
 * The images of a split as training examples: one per image, with the embedding rows of its
 * views (row of the center crop first, then augmented views in view order). Few-shot sampling
 * draws images, never individual views.
 */
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
