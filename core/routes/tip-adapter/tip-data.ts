/**
 * @file What Tip-Adapter is built from: CoOp's k-shot train subset (core/routes/few-shot.ts, the
 * same images as CoOp and the probe for a seed) and CoOp's min(k, 4)-shot val subset, both
 * restricted to the base classes under base-to-new.
 *
 * A cache key is an image's feature L2-normalised: the repo averages `augment_epoch` random-crop
 * views of each train image and normalises the mean; clipeval averages the image's augmented
 * views when extraction made them (`extraction.augmentedViews`), else takes its center crop.
 */
import type { Protocol } from '../../config/run-spec';
import { DatasetError } from '../../dataset/types';
import type { EmbeddingMatrix } from '../../embeddings/reader';
import { l2NormalizeRows } from '../../util/vectors';
import { isBaseClass } from '../base-to-new';
import { type Examples, groupExamples, selectExamples } from '../examples';
import { fewShotValidation, sampleFewShot } from '../few-shot';
import type { TrainImages } from './finetune';

export interface TipData {
  /** Cache keys [nk, dim] (one per train image) and their classes. */
  keys: Float32Array;
  keyLabels: Int32Array;
  /** The train images with every view, for Tip-Adapter-F. */
  train: TrainImages;
  /** Center-crop val features [n, dim] and labels. */
  val: { x: Float32Array; labels: Int32Array };
  /** Views averaged into each key (1: the center crop). */
  viewsPerKey: number;
  notes: string[];
}

export function tipData(
  matrices: { train: EmbeddingMatrix; val: EmbeddingMatrix },
  classLabels: readonly string[],
  job: { shots: number; seed: number; protocol: Protocol },
): TipData {
  const k = classLabels.length;
  const keep = (e: Examples) =>
    job.protocol === 'base-to-new'
      ? selectExamples(
          e,
          [...e.labels.keys()].filter((i) => isBaseClass(e.labels[i]!, k)),
        )
      : e;
  const { train: trainMatrix, val: valMatrix } = matrices;
  const all = groupExamples(trainMatrix);
  const sample = sampleFewShot(all.labels, k, job.shots, job.seed, 'train', all.imageIds);
  const train = keep(selectExamples(all, sample.indices));
  // Shortfalls of the classes the cache holds (the base ones under base-to-new).
  const notes = sample.shortfalls
    .filter((s) => job.protocol !== 'base-to-new' || isBaseClass(s.classIndex, k))
    .map(
      (s) =>
        `class ${classLabels[s.classIndex]} has ${s.available} train images, fewer than ${s.wanted}: all of them were used`,
    );
  const val = groupExamples(valMatrix);
  const valSample = fewShotValidation(val.labels, k, job.shots, job.seed, val.imageIds);
  const valKept = keep(selectExamples(val, valSample.indices));
  if (train.labels.length === 0) {
    const which =
      job.protocol === 'base-to-new' ? 'no train image of a base class' : 'no train image';
    throw new DatasetError(
      `Tip-Adapter has ${which} to cache (${k} classes): add train images${job.protocol === 'base-to-new' ? ' of the first half of the class list' : ''}, or disable it with tipAdapter.enabled: false.`,
    );
  }
  const { keys, viewsPerKey } = cacheKeys(train, trainMatrix);
  return {
    keys,
    keyLabels: train.labels,
    train: { x: trainMatrix.embeddings, views: train.rows, labels: train.labels },
    val: { x: centerCrops(valKept, valMatrix), labels: valKept.labels },
    viewsPerKey,
    notes,
  };
}

/** Each image's augmented views averaged and L2-normalised, or its center crop (already unit). */
function cacheKeys(e: Examples, m: EmbeddingMatrix): { keys: Float32Array; viewsPerKey: number } {
  const { dim } = m;
  const sums = new Float32Array(e.rows.length * dim);
  let viewsPerKey = 1;
  e.rows.forEach((rows, i) => {
    const views = rows.length > 1 ? rows.slice(1) : rows;
    viewsPerKey = views.length;
    for (const r of views)
      for (let d = 0; d < dim; d++) sums[i * dim + d]! += m.embeddings[r * dim + d]!;
  });
  return { keys: l2NormalizeRows(sums, dim), viewsPerKey };
}

function centerCrops(e: Examples, m: EmbeddingMatrix): Float32Array {
  const x = new Float32Array(e.rows.length * m.dim);
  e.rows.forEach((rows, i) =>
    x.set(m.embeddings.subarray(rows[0]! * m.dim, (rows[0]! + 1) * m.dim), i * m.dim),
  );
  return x;
}
