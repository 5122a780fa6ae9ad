import { describe, expect, it } from 'vitest';
import type { RouteSummary } from '../../core/routes/route-result';
import { clipBenchmarkResult } from '../../core/routes/results';
import { fewShotTable, summarizeSeeds } from '../../core/runs/summary';

describe('result layouts', () => {
  it("writes CLIP_benchmark's result JSON", () => {
    const result = clipBenchmarkResult({
      dataset: 's3://b/datasets/pets/',
      model: 'clip-vit-base-patch32',
      pretrained: 'abc123',
      task: 'zeroshot_classification',
      metrics: { acc1: 0.75, acc5: null, meanPerClassRecall: 0.7 },
    });
    expect(result).toEqual({
      dataset: 's3://b/datasets/pets/',
      model: 'clip-vit-base-patch32',
      pretrained: 'abc123',
      task: 'zeroshot_classification',
      metrics: { acc1: 0.75, acc5: null, mean_per_class_recall: 0.7 },
      language: 'en',
    });
  });

  it('summarizes seeds with the population std (ddof 0, as np.std in CoOp)', () => {
    const s = summarizeSeeds([1, 2, 3, 4]);
    expect(s).toMatchObject({ mean: 2.5, n: 4, values: [1, 2, 3, 4] });
    expect(s.std).toBeCloseTo(Math.sqrt(1.25), 12); // the sample std would be sqrt(5/3)
    expect(summarizeSeeds([0.6])).toMatchObject({ mean: 0.6, std: 0 });
    expect(() => summarizeSeeds([])).toThrow(/no values/);
  });

  it('summarizes few-shot routes per route and shot count, seeds in run order', () => {
    const run = (
      route: RouteSummary['route'],
      shots: number | 'all' | undefined,
      seed: number | undefined,
      acc1: number,
    ): RouteSummary => ({
      route,
      ...(shots !== undefined ? { shots } : {}),
      ...(seed !== undefined ? { seed } : {}),
      n: 10,
      acc1,
      acc5: 0.9,
      meanPerClassRecall: acc1 - 0.1,
      macroF1: acc1 - 0.2,
      notes: [],
      metricsUri: 's3://b/metrics.json',
    });
    const table = fewShotTable([
      run('zero-shot', undefined, undefined, 0.4),
      run('coop', 16, 2, 0.8),
      run('probe', 'all', 1, 0.9),
      run('coop', 1, 1, 0.5),
      run('coop', 16, 1, 0.6),
      run('coop', 16, 3, 0.7),
      run('probe', 16, 1, 0.3),
    ]);
    // Zero-shot has no row; one row per (route, shots), in the order the routes first appear.
    expect(table.map((r) => [r.route, r.shots])).toEqual([
      ['coop', 16],
      ['probe', 'all'],
      ['coop', 1],
      ['probe', 16],
    ]);
    const sixteen = table[0]!;
    expect(sixteen.seeds).toEqual([2, 1, 3]);
    expect(sixteen.acc1.mean).toBeCloseTo(0.7, 12);
    // Population std (ddof 0), as CoOp reports it: the sample std would be 0.1.
    expect(sixteen.acc1.std).toBeCloseTo(Math.sqrt(0.02 / 3), 12);
    expect(sixteen.macroF1.mean).toBeCloseTo(0.5, 12);
    expect(sixteen.meanPerClassRecall.mean).toBeCloseTo(0.6, 12);
    expect(table[1]).toMatchObject({ seeds: [1], acc1: { mean: 0.9, std: 0 } });
  });
});
