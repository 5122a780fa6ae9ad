import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Features, probeScores, trainProbe } from '../../core/routes/probe';
import { concatRows } from '../../core/routes/probe/features';
import { clusterProblem } from '../helpers/probe-data';
import { runPythonJson } from '../helpers/python';

// The lbfgs probe against scikit-learn's LogisticRegression (lbfgs, multinomial) fitted on the
// same features at the same C: overlapping Gaussian clusters, L2-normalised, 10 classes, 64 dims,
// about 77-79% test accuracy (neither trivially separable nor hopeless). 4,000 test rows: the
// two fits stop at the same gradient tolerance by different paths and disagree on ~0.3% of rows.

const DIM = 64;
const CLASSES = 10;
const sample = clusterProblem({ dim: DIM, classes: CLASSES, spread: 0.4, seed: 11 });
const train = sample(2000, 'train');
const val = sample(500, 'val');
const test = sample(4000, 'test');
const dir = mkdtempSync(join(tmpdir(), 'clipeval-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Sklearn {
  accuracy: number;
  predictions: number[];
  n_iter: number;
}

/** scikit-learn fitted on `fitOn` at C, scored on the test rows. */
function sklearn(fitOn: Features, c: number): Sklearn {
  writeFileSync(join(dir, 'train_x.f32'), fitOn.x);
  writeFileSync(join(dir, 'train_y.i32'), fitOn.labels);
  writeFileSync(join(dir, 'test_x.f32'), test.x);
  writeFileSync(join(dir, 'test_y.i32'), test.labels);
  const script = readFileSync(join(__dirname, '..', 'helpers', 'probe_sklearn.py'), 'utf8');
  return runPythonJson(script, { dir, dim: DIM, C: c, max_iter: 1000 }) as Sklearn;
}

function predictions(scores: Float32Array): number[] {
  return Array.from({ length: test.n }, (_, i) => {
    const row = scores.subarray(i * CLASSES, (i + 1) * CLASSES);
    return row.indexOf(Math.max(...row));
  });
}

const accuracy = (pred: number[]) => pred.filter((p, i) => p === test.labels[i]).length / test.n;

describe('lbfgs probe vs scikit-learn', () => {
  for (const c of [0.316, 10]) {
    it(`fits the same model at C = ${c}`, async () => {
      const ours = await trainProbe({
        train,
        numClasses: CLASSES,
        recipe: { kind: 'lbfgs', C: c },
        seed: 1,
      });
      expect(ours.selected).toEqual({ C: c, validation: 'fixed' });
      const pred = predictions(probeScores(ours, test.x, test.n));
      const ref = sklearn(train, c);
      expect(Math.abs(accuracy(pred) - ref.accuracy)).toBeLessThanOrEqual(0.003);
      const agree = pred.filter((p, i) => p === ref.predictions[i]).length / test.n;
      expect(agree).toBeGreaterThanOrEqual(0.99);
      expect(ref.accuracy).toBeGreaterThan(0.6);
      expect(ref.accuracy).toBeLessThan(0.95);
    });
  }

  it('selects C on the val split end to end, then refits on train + val', async () => {
    const phases = new Set<string>();
    const ours = await trainProbe({
      train,
      val,
      numClasses: CLASSES,
      recipe: { kind: 'lbfgs' },
      seed: 1,
      onProgress: (p) => phases.add(p.phase.replace(/ C=.*/, '')),
    });
    expect(ours.selected.validation).toBe('val-split');
    const c = ours.selected.C!;
    expect(c).toBeGreaterThan(1e-3);
    expect(c).toBeLessThan(1e3);
    expect(ours.selected.valAccuracy).toBeGreaterThan(0.6);
    expect(ours.notes.join('\n')).toMatch(/selected on 500 validation images .* over 1[4-6] fits/);
    expect([...phases]).toEqual(['lbfgs select', 'lbfgs final']);
    const pred = predictions(probeScores(ours, test.x, test.n));
    const ref = sklearn(concatRows(train, val), c);
    expect(Math.abs(accuracy(pred) - ref.accuracy)).toBeLessThanOrEqual(0.003);
  });
});
