/**
 * @file Classification metrics of one route on the test split, from its score matrix.
 *
 * Definitions follow the references clipeval is compared with:
 * - acc1, acc5 and meanPerClassRecall as CLIP_benchmark reports them (acc5 only with K >= 5
 *   classes: CLIP_benchmark writes NaN below that, clipeval writes null).
 * - meanPerClassRecall is sklearn's balanced_accuracy_score: the mean recall over the classes
 *   present in the test labels. Classes with no test image have no recall; they are left out of
 *   the mean and listed in absentClasses (sklearn drops them the same way, with a warning).
 * - macroF1 is sklearn's f1_score(average='macro') with its default labels=None: the mean F1 over
 *   the classes that occur in the test labels OR the predictions. A class absent from both is left
 *   out; a class that is predicted but absent from the labels counts with F1 = 0 (it only has false
 *   positives); a class present but never predicted counts with F1 = 0 (zero_division = 0).
 *
 * Ties: the prediction is the lowest class index among the highest scores (numpy/torch argmax),
 * and top-k lists equal scores lower index first. So acc5 with ties is deterministic; torch.topk
 * leaves that order unspecified and sklearn's top_k_accuracy_score prefers the higher index.
 */

export interface ClassMetrics {
  name: string;
  /** Test images of this class. */
  support: number;
  /** Test images predicted (top-1) as this class. */
  predicted: number;
  /** Test images of this class predicted as this class. */
  correct: number;
  /** correct / support: the per-class accuracy; null when the class has no test image. */
  recall: number | null;
  /** correct / predicted; null when the class is never predicted. */
  precision: number | null;
  /** 2·correct / (support + predicted); null when the class is neither in the labels nor predicted. */
  f1: number | null;
}

export interface Metrics {
  n: number;
  acc1: number;
  /** null with fewer than 5 classes. */
  acc5: number | null;
  macroF1: number;
  meanPerClassRecall: number;
  perClass: ClassMetrics[];
  /**
   * The confusion matrix, sparse: its non-zero cells as [true class, predicted class, count],
   * ordered by true class then predicted class. At most one cell per test image, so the file
   * grows with the test split, not with classes² (a dense matrix made metrics.json exceed V8's
   * string limit near 8,700 classes). `denseConfusion` expands it for small K.
   */
  confusionCells: ConfusionCell[];
  /** Classes with no test image: excluded from meanPerClassRecall. */
  absentClasses: string[];
}

/** [true class, predicted class, count] of one non-zero cell of a confusion matrix. */
export type ConfusionCell = [trueClass: number, predicted: number, count: number];

/** A [K][K] matrix from sparse cells: rows true classes, columns predicted classes. */
export function denseConfusion(cells: readonly ConfusionCell[], K: number): number[][] {
  const m = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (const [t, p, count] of cells) m[t]![p]! += count;
  return m;
}

/** The non-zero cells of a dense [K][K] matrix (metrics.json files written before the sparse form). */
export function sparseConfusion(matrix: readonly (readonly number[])[]): ConfusionCell[] {
  return matrix.flatMap((row, t) =>
    row.flatMap((count, p): ConfusionCell[] => (count !== 0 ? [[t, p, count]] : [])),
  );
}

export interface TopK {
  /** [n, k] row-major: class indices, best first. */
  indices: Int32Array;
  /** [n, k] row-major: the matching scores. */
  scores: Float32Array;
}

/**
 * The k best classes of every row of a [n, K] score matrix, best first, lower index first among
 * equal scores. Insertion into a k-long list: O(n·K·k), cheap for k = 5.
 */
export function topK(scores: Float32Array, n: number, K: number, k: number): TopK {
  checkScores(scores, n, K);
  if (!Number.isInteger(k) || k < 1 || k > K) throw new Error(`topK: k must be 1..${K}, got ${k}`);
  const indices = new Int32Array(n * k);
  const best = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const at = i * k;
    let filled = 0;
    for (let c = 0; c < K; c++) {
      const s = scores[i * K + c]!;
      // Strictly greater: a later (higher) index never overtakes an equal earlier one.
      let pos = filled;
      while (pos > 0 && s > best[at + pos - 1]!) pos--;
      if (pos >= k) continue;
      for (let j = Math.min(filled, k - 1); j > pos; j--) {
        best[at + j] = best[at + j - 1]!;
        indices[at + j] = indices[at + j - 1]!;
      }
      best[at + pos] = s;
      indices[at + pos] = c;
      if (filled < k) filled++;
    }
  }
  return { indices, scores: best };
}

export function computeMetrics(
  scores: Float32Array,
  labels: ArrayLike<number>,
  classNames: readonly string[],
): Metrics {
  const K = classNames.length;
  const n = labels.length;
  if (n === 0) throw new Error('computeMetrics: no test images to score');
  checkScores(scores, n, K);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= K)
      throw new Error(`computeMetrics: label ${y} of row ${i} is not a class index 0..${K - 1}`);
  }
  const k = Math.min(5, K);
  const top = topK(scores, n, K, k);
  // Counts per (true, predicted) pair present, and per class: O(n + K), never K x K.
  const cells = new Map<number, number>();
  const support = new Array<number>(K).fill(0);
  const predicted = new Array<number>(K).fill(0);
  const correct = new Array<number>(K).fill(0);
  let hits1 = 0;
  let hits5 = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const pred = top.indices[i * k]!;
    cells.set(y * K + pred, (cells.get(y * K + pred) ?? 0) + 1);
    support[y]!++;
    predicted[pred]!++;
    if (pred === y) {
      hits1++;
      correct[y]!++;
    }
    for (let j = 0; j < k; j++) if (top.indices[i * k + j] === y) hits5++;
  }
  const perClass = classNames.map((name, c) =>
    classMetrics(name, support[c]!, predicted[c]!, correct[c]!),
  );
  const confusionCells = [...cells]
    .sort((a, b) => a[0] - b[0])
    .map(([at, count]): ConfusionCell => [Math.floor(at / K), at % K, count]);
  const present = perClass.filter((m) => m.recall !== null);
  const inUnion = perClass.filter((m) => m.f1 !== null);
  return {
    n,
    acc1: hits1 / n,
    acc5: K >= 5 ? hits5 / n : null,
    macroF1: mean(inUnion.map((m) => m.f1!)),
    meanPerClassRecall: mean(present.map((m) => m.recall!)),
    perClass,
    confusionCells,
    absentClasses: perClass.filter((m) => m.support === 0).map((m) => m.name),
  };
}

function classMetrics(
  name: string,
  support: number,
  predicted: number,
  correct: number,
): ClassMetrics {
  return {
    name,
    support,
    predicted,
    correct,
    recall: support > 0 ? correct / support : null,
    precision: predicted > 0 ? correct / predicted : null,
    // 2TP / (2TP + FP + FN) = 2·correct / (support + predicted), as sklearn computes it.
    f1: support + predicted > 0 ? (2 * correct) / (support + predicted) : null,
  };
}

function checkScores(scores: Float32Array, n: number, K: number): void {
  if (K < 1) throw new Error('metrics need at least one class');
  if (scores.length !== n * K)
    throw new Error(`expected ${n}x${K} scores, got ${scores.length} values`);
  // A NaN score means a broken model or head; no ranking rule makes it meaningful.
  if (scores.some(Number.isNaN)) throw new Error('scores contain NaN');
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
