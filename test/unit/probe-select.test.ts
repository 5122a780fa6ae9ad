import { describe, expect, it } from 'vitest';
import { ABSENT_CLASS_BIAS, type Features, probeScores, trainProbe } from '../../core/routes/probe';
import { coopSearchC } from '../../core/routes/probe/selection';
import { planValidation } from '../../core/routes/probe/validation';
import { clusterProblem } from '../helpers/probe-data';

// Where the probe's regularisation comes from (val split, carved from train, defaults), CoOp's
// C search, classes without training rows, and aborting.

/** Features whose rows are just their index (enough for the validation rule). */
function byCounts(counts: number[]): Features {
  const labels = Int32Array.from(counts.flatMap((n, c) => Array<number>(n).fill(c)));
  return { x: Float32Array.from(labels.keys()), labels, n: labels.length, dim: 1 };
}

describe('validation rule', () => {
  it('uses the val split when one is given', () => {
    const train = byCounts([3, 3]);
    const val = byCounts([1, 1]);
    expect(planValidation(train, val, 2, 0)).toMatchObject({ source: 'val-split', val });
  });

  it('carves a seeded stratified 20% of each class, keeping one train row per class', () => {
    // Class 4 has no train rows: it does not count.
    const train = byCounts([10, 5, 2, 3, 0]);
    const plan = planValidation(train, undefined, 5, 7);
    if (plan.source !== 'carved-from-train') throw new Error(plan.source);
    const count = (f: Features, c: number) => f.labels.filter((y) => y === c).length;
    // round(20%), at least 1, at most n - 1: 10 -> 2, 5 -> 1, 2 -> 1, 3 -> 1.
    expect([0, 1, 2, 3].map((c) => count(plan.val, c))).toEqual([2, 1, 1, 1]);
    expect([0, 1, 2, 3].map((c) => count(plan.fitOn, c))).toEqual([8, 4, 1, 2]);
    const rows = [...plan.val.x, ...plan.fitOn.x].sort((a, b) => a - b);
    expect(rows).toEqual([...train.x]);
    expect(plan.note).toMatch(/5 train images carved out/);
    const again = planValidation(train, undefined, 5, 7);
    expect(again.source === 'carved-from-train' && [...again.val.x]).toEqual([...plan.val.x]);
    const picks = new Set(
      [1, 2, 3, 4, 5].map((seed) => {
        const p = planValidation(train, undefined, 5, seed);
        return p.source === 'carved-from-train' ? [...p.val.x].join() : '';
      }),
    );
    expect(picks.size).toBeGreaterThan(1);
  });

  it('selects nothing for a fixed value, fitting on train + val', () => {
    const plan = planValidation(byCounts([3, 3]), byCounts([1, 1]), 2, 0, true);
    expect(plan.source).toBe('fixed');
    expect(plan.finalRows.n).toBe(8);
  });

  it('falls back to defaults when a class has a single train row', () => {
    const plan = planValidation(byCounts([4, 1, 3]), undefined, 3, 0);
    expect(plan.source).toBe('defaults');
    expect(plan.note).toMatch(/1 class\(es\) have a single train image/);
  });
});

describe("CoOp's C search", () => {
  it('takes the grid peak, then 8 log-space bisection rounds (hand-traced)', async () => {
    // Val accuracy peaks at log10 C = -1.3. Grid peak 1e-2; then the bracket in log10 C:
    // [-3,-1] -> right wins -> [-2,-1] -> right -> [-1.5,-1] -> left -> [-1.5,-1.25] -> right
    // -> [-1.375,-1.25] -> right -> [-1.3125,-1.25] -> left -> [-1.3125,-1.28125] -> left
    // -> [-1.3125,-1.296875] -> right wins: C = 10^-1.296875.
    const score = (c: number) => Promise.resolve(1 - 0.1 * Math.abs(Math.log10(c) + 1.3));
    const s = await coopSearchC(score);
    expect(Math.log10(s.value)).toBeCloseTo(-1.296875, 12);
    // 7 grid fits + 2 for the first round + 1 per later round, less 1e-2 scored again.
    expect(s.scored).toHaveLength(15);
  });

  it('prefers the first grid value (the largest C) on ties and the left end in a round', async () => {
    const s = await coopSearchC(() => Promise.resolve(0.5), [1e6, 1e4, 1], 1);
    expect(s.value).toBe(1e5);
  });
});

describe('trainProbe edge cases', () => {
  const sample = clusterProblem({ dim: 12, classes: 4, spread: 0.3, seed: 5 });

  it('gives a class with no train rows a column that never wins, and says so', async () => {
    const all = sample(200, 'train');
    const keep = [...all.labels.keys()].filter((i) => all.labels[i] !== 2);
    const train: Features = {
      x: Float32Array.from(keep.flatMap((i) => [...all.x.subarray(i * 12, (i + 1) * 12)])),
      labels: Int32Array.from(keep, (i) => all.labels[i]!),
      n: keep.length,
      dim: 12,
    };
    for (const recipe of [{ kind: 'lbfgs' } as const, { kind: 'adamw', epochs: 2 } as const]) {
      const r = await trainProbe({ train, numClasses: 4, recipe, seed: 1, threads: 1 });
      expect(r.bias[2]).toBe(ABSENT_CLASS_BIAS);
      for (let d = 0; d < 12; d++) expect(r.weights[d * 4 + 2]).toBe(0);
      expect(r.notes.join('\n')).toMatch(/1 class\(es\) had no training images/);
      const test = sample(100, 'test');
      const scores = probeScores(r, test.x, test.n);
      for (let i = 0; i < test.n; i++) {
        const row = scores.subarray(i * 4, i * 4 + 4);
        expect(row.indexOf(Math.max(...row))).not.toBe(2);
      }
    }
  });

  it('uses the published defaults when no validation set can be had', async () => {
    const train = sample(40, 'train');
    // Make class 3 a single row.
    const lone = train.labels.indexOf(3);
    train.labels.forEach((y, i) => y === 3 && i !== lone && (train.labels[i] = 0));
    const lbfgs = await trainProbe({ train, numClasses: 4, recipe: { kind: 'lbfgs' }, seed: 1 });
    expect(lbfgs.selected).toEqual({ C: 0.316, validation: 'defaults' });
    expect(lbfgs.notes.join('\n')).toMatch(/C = 0.316 \(OpenAI's published example\)/);
    const adamw = await trainProbe({ train, numClasses: 4, recipe: { kind: 'adamw' }, seed: 1 });
    expect(adamw.selected).toEqual({ weightDecay: 0, validation: 'defaults' });
  });

  it('selects on a carved validation set when no val split is given', async () => {
    const r = await trainProbe({
      train: sample(200, 'train'),
      numClasses: 4,
      recipe: { kind: 'adamw', epochs: 2, weightDecayGrid: [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100] },
      seed: 1,
    });
    expect(r.selected.validation).toBe('carved-from-train');
    expect(r.selected.valAccuracy).toBeGreaterThan(0.5);
    expect(r.notes[0]).toMatch(/no val split: selected on \d+ train images carved out/);
  });

  it('aborts promptly with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const started = performance.now();
    const run = trainProbe({
      train: sample(300, 'train'),
      val: sample(100, 'val'),
      numClasses: 4,
      recipe: { kind: 'lbfgs' },
      seed: 1,
      signal: controller.signal,
      onProgress: (p) => p.done === 2 && controller.abort(reason),
    });
    await expect(run).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(2000);
    const aborted = AbortSignal.abort(reason);
    await expect(
      trainProbe({
        train: sample(10, 't'),
        numClasses: 4,
        recipe: { kind: 'adamw' },
        seed: 1,
        signal: aborted,
      }),
    ).rejects.toBe(reason);
  });

  it('refuses labels outside the classes and mismatched sizes', async () => {
    const train = sample(10, 'train');
    await expect(
      trainProbe({ train, numClasses: 3, recipe: { kind: 'lbfgs' }, seed: 1 }),
    ).rejects.toThrow(/label 3 of row \d+ is not a class 0..2/);
    await expect(
      trainProbe({ train: { ...train, n: 11 }, numClasses: 4, recipe: { kind: 'lbfgs' }, seed: 1 }),
    ).rejects.toThrow(/120 floats and 10 labels for 11 rows of 12/);
  });
});
