import { describe, expect, it } from 'vitest';
import { computeMetrics, denseConfusion, sparseConfusion, topK } from '../../core/routes/metrics';
import { gaussian, seededRandom } from '../../core/util/random';
import { runPythonJson } from '../helpers/python';

/** Row-major scores from nested rows. */
const matrix = (rows: number[][]) => Float32Array.from(rows.flat());
/** Scores that predict `preds` (1 for the predicted class, 0 elsewhere: no tie at the top). */
const predicting = (preds: number[], K: number) =>
  matrix(preds.map((p) => Array.from({ length: K }, (_, c) => (c === p ? 1 : 0))));

describe('computeMetrics on hand-computed examples', () => {
  it('a class absent from the test split and a class never predicted', () => {
    // owl has no test image but is predicted once; fox has a test image but is never predicted.
    const names = ['cat', 'dog', 'fox', 'owl'];
    const labels = [0, 0, 0, 1, 1, 2];
    const m = computeMetrics(predicting([0, 0, 1, 1, 3, 0], 4), labels, names);
    expect(m.n).toBe(6);
    expect(m.acc1).toBeCloseTo(3 / 6, 12);
    expect(m.acc5).toBeNull(); // 4 classes
    expect(m.confusionCells).toEqual([
      [0, 0, 2],
      [0, 1, 1],
      [1, 1, 1],
      [1, 3, 1],
      [2, 0, 1],
    ]);
    expect(denseConfusion(m.confusionCells, 4)).toEqual([
      [2, 1, 0, 0],
      [0, 1, 0, 1],
      [1, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    expect(m.absentClasses).toEqual(['owl']);
    expect(m.perClass).toEqual([
      {
        name: 'cat',
        support: 3,
        predicted: 3,
        correct: 2,
        recall: 2 / 3,
        precision: 2 / 3,
        f1: 2 / 3,
      },
      {
        name: 'dog',
        support: 2,
        predicted: 2,
        correct: 1,
        recall: 1 / 2,
        precision: 1 / 2,
        f1: 1 / 2,
      },
      { name: 'fox', support: 1, predicted: 0, correct: 0, recall: 0, precision: null, f1: 0 },
      { name: 'owl', support: 0, predicted: 1, correct: 0, recall: null, precision: 0, f1: 0 },
    ]);
    // Recall over the 3 classes with test images; F1 over the 4 in labels or predictions.
    expect(m.meanPerClassRecall).toBeCloseTo((2 / 3 + 1 / 2 + 0) / 3, 12);
    expect(m.macroF1).toBeCloseTo((2 / 3 + 1 / 2 + 0 + 0) / 4, 12);
  });

  it('leaves a class neither in the labels nor predicted out of macro F1', () => {
    const m = computeMetrics(predicting([0, 1, 1], 3), [0, 1, 0], ['a', 'b', 'c']);
    expect(m.perClass[2]).toMatchObject({
      support: 0,
      predicted: 0,
      recall: null,
      precision: null,
      f1: null,
    });
    expect(m.absentClasses).toEqual(['c']);
    // a: P 1, R 1/2, F1 2/3; b: P 1/2, R 1, F1 2/3.
    expect(m.macroF1).toBeCloseTo(2 / 3, 12);
    expect(m.meanPerClassRecall).toBeCloseTo(3 / 4, 12);
  });

  it('breaks top-1 ties towards the lowest class index', () => {
    const scores = matrix([
      [0.5, 0.9, 0.9],
      [0.2, 0.2, 0.2],
      [-1, -3, -1],
    ]);
    const m = computeMetrics(scores, [2, 1, 2], ['a', 'b', 'c']);
    // Predictions 1, 0, 0: all wrong.
    expect(m.acc1).toBe(0);
    expect(denseConfusion(m.confusionCells, 3)).toEqual([
      [0, 0, 0],
      [1, 0, 0],
      [1, 1, 0],
    ]);
  });

  it('breaks top-5 ties towards the lowest class indices', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const scores = matrix([
      [1, 1, 1, 1, 1, 1, 1], // top-5: a b c d e
      [1, 1, 1, 1, 1, 1, 1],
      [0, 3, 3, 0, 0, 0, 2], // top-5: b c g a d
      [0, 3, 3, 0, 0, 0, 2],
    ]);
    const top = topK(scores, 4, 7, 5);
    expect(Array.from(top.indices)).toEqual([
      0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 1, 2, 6, 0, 3, 1, 2, 6, 0, 3,
    ]);
    expect(Array.from(top.scores.subarray(10, 15))).toEqual([3, 3, 2, 0, 0]);
    const m = computeMetrics(scores, [4, 5, 3, 4], names);
    expect(m.acc5).toBe(2 / 4); // rows 0 and 2 hit; e (row 3) and f (row 1) fall just outside
    expect(m.acc1).toBe(0);
  });

  it('reports acc5 from 5 classes on, and null below', () => {
    const five = computeMetrics(predicting([1, 0], 5), [0, 0], ['a', 'b', 'c', 'd', 'e']);
    expect(five.acc5).toBe(1); // every class is in a 5-class top-5
    expect(five.acc1).toBe(0.5);
    expect(computeMetrics(predicting([1, 0], 2), [0, 0], ['a', 'b']).acc5).toBeNull();
  });

  it('keeps the confusion matrix sparse: metrics.json grows with classes, not classes²', () => {
    // 3,000 classes, one test image each, each predicted as the next class: a dense matrix was
    // 9M cells (the indented dense form passed V8's string limit near 8,700 classes).
    const K = 3000;
    const names = Array.from({ length: K }, (_, i) => `class${i}`);
    const scores = new Float32Array(K * K);
    for (let i = 0; i < K; i++) scores[i * K + ((i + 1) % K)] = 1;
    const m = computeMetrics(
      scores,
      Array.from({ length: K }, (_, i) => i),
      names,
    );
    expect(m.confusionCells).toHaveLength(K);
    expect(m.confusionCells[0]).toEqual([0, 1, 1]);
    expect(m.confusionCells.at(-1)).toEqual([K - 1, 0, 1]);
    expect(JSON.stringify(m).length).toBeLessThan(200 * K);
  });

  it('handles a single class', () => {
    const m = computeMetrics(matrix([[0.3], [-1]]), [0, 0], ['only']);
    expect(m).toMatchObject({ n: 2, acc1: 1, acc5: null, macroF1: 1, meanPerClassRecall: 1 });
    expect(m.confusionCells).toEqual([[0, 0, 2]]);
    expect(m.absentClasses).toEqual([]);
  });

  it('perfect and all-wrong predictions', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const labels = [0, 1, 2, 3, 4, 5, 0];
    const perfect = computeMetrics(predicting(labels, 6), labels, names);
    expect(perfect).toMatchObject({ acc1: 1, acc5: 1, macroF1: 1, meanPerClassRecall: 1 });
    const wrong = computeMetrics(predicting([1, 2, 3, 4, 5, 0, 1], 6), labels, names);
    expect(wrong).toMatchObject({ acc1: 0, macroF1: 0, meanPerClassRecall: 0 });
    expect(wrong.perClass.every((c) => c.f1 === 0 && c.recall === 0)).toBe(true);
  });

  it('refuses inputs that do not fit', () => {
    expect(() => computeMetrics(new Float32Array(5), [0, 1], ['a', 'b'])).toThrow(/expected 2x2/);
    expect(() => computeMetrics(new Float32Array(4), [0, 2], ['a', 'b'])).toThrow(
      /label 2 of row 1/,
    );
    expect(() => computeMetrics(new Float32Array(0), [], ['a'])).toThrow(/no test images/);
    expect(() => computeMetrics(Float32Array.of(NaN, 0), [0], ['a', 'b'])).toThrow(/NaN/);
    expect(() => topK(new Float32Array(4), 2, 2, 3)).toThrow(/k must be 1..2/);
  });
});

describe('computeMetrics agrees with scikit-learn', () => {
  it('on a random seeded example with an absent class', () => {
    const n = 300;
    const K = 8;
    const rand = seededRandom('metrics-test', 1);
    const normal = gaussian(rand);
    // Class 7 never appears in the labels; scores lean towards the true class so that the
    // metrics are neither 0 nor 1.
    const labels = Array.from({ length: n }, () => Math.floor(rand() * (K - 1)));
    const scores = Float32Array.from({ length: n * K }, (_, i) => {
      const row = Math.floor(i / K);
      return normal() + (i % K === labels[row] ? 1.2 : 0);
    });
    const names = Array.from({ length: K }, (_, c) => `class${c}`);
    const m = computeMetrics(scores, labels, names);
    const ref = runPythonJson(SKLEARN_METRICS, { labels, scores: Array.from(scores), K }) as {
      acc1: number;
      acc5: number;
      balanced: number;
      f1_macro: number;
      confusion: number[][];
      f1_per_class: number[];
      union: number[];
    };
    expect(m.acc1).toBeCloseTo(ref.acc1, 12);
    expect(m.acc5).toBeCloseTo(ref.acc5, 12);
    expect(m.meanPerClassRecall).toBeCloseTo(ref.balanced, 12);
    expect(m.macroF1).toBeCloseTo(ref.f1_macro, 12);
    expect(denseConfusion(m.confusionCells, K)).toEqual(ref.confusion);
    expect(m.confusionCells).toEqual(sparseConfusion(ref.confusion));
    expect(m.absentClasses).toEqual(['class7']);
    ref.union.forEach((c, j) => expect(m.perClass[c]!.f1).toBeCloseTo(ref.f1_per_class[j]!, 12));
    // The example exercises what it claims: a middling score and a predicted-but-absent class.
    expect(m.acc1).toBeGreaterThan(0.2);
    expect(m.acc1).toBeLessThan(0.9);
    expect(m.perClass[7]!.predicted).toBeGreaterThan(0);
  });
});

const SKLEARN_METRICS = `
import json, sys
import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             top_k_accuracy_score)
d = json.load(sys.stdin)
y = np.array(d["labels"])
s = np.array(d["scores"], dtype=np.float64).reshape(len(y), d["K"])
pred = s.argmax(axis=1)
union = np.unique(np.concatenate([y, pred]))
print(json.dumps({
  "acc1": accuracy_score(y, pred),
  "acc5": top_k_accuracy_score(y, s, k=5, labels=np.arange(d["K"])),
  "balanced": balanced_accuracy_score(y, pred),
  "f1_macro": f1_score(y, pred, average="macro"),
  "confusion": confusion_matrix(y, pred, labels=np.arange(d["K"])).tolist(),
  "f1_per_class": f1_score(y, pred, average=None).tolist(),
  "union": union.tolist(),
}))
`;
