import { describe, expect, it } from 'vitest';
import {
  clipBenchmarkResult,
  summarizeFewShot,
  summarizeSeeds,
} from '../../activities/heads/results';

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

  it('summarizes few-shot runs per shot count, seeds in order', () => {
    const run = (shots: number | 'all', seed: number, acc1: number, acc5: number | null = 0.9) => ({
      shots,
      seed,
      metrics: { acc1, acc5, meanPerClassRecall: acc1 - 0.1, macroF1: acc1 - 0.2 },
    });
    const out = summarizeFewShot([
      run(16, 2, 0.8),
      run('all', 1, 0.9),
      run(1, 1, 0.5),
      run(16, 1, 0.6),
      run(16, 3, 0.7),
    ]);
    expect(out.map((s) => s.shots)).toEqual([1, 16, 'all']);
    const sixteen = out[1]!;
    expect(sixteen.seeds).toEqual([1, 2, 3]);
    expect(sixteen.acc1.values).toEqual([0.6, 0.8, 0.7]);
    expect(sixteen.acc1.mean).toBeCloseTo(0.7, 12);
    expect(sixteen.acc1.std).toBeCloseTo(Math.sqrt(0.02 / 3), 12);
    expect(sixteen.macroF1.mean).toBeCloseTo(0.5, 12);
    expect(sixteen.meanPerClassRecall.mean).toBeCloseTo(0.6, 12);
    expect(sixteen.acc5).toMatchObject({ mean: 0.9, std: 0 });
  });

  it('has no acc5 summary below 5 classes, and refuses inconsistent runs', () => {
    const m = (acc5: number | null) => ({ acc1: 0.5, acc5, meanPerClassRecall: 0.5, macroF1: 0.5 });
    expect(summarizeFewShot([{ shots: 4, seed: 1, metrics: m(null) }])[0]!.acc5).toBeNull();
    expect(() =>
      summarizeFewShot([
        { shots: 4, seed: 1, metrics: m(null) },
        { shots: 4, seed: 2, metrics: m(0.9) },
      ]),
    ).toThrow(/acc5 is missing/);
    expect(() =>
      summarizeFewShot([
        { shots: 4, seed: 1, metrics: m(0.9) },
        { shots: 4, seed: 1, metrics: m(0.9) },
      ]),
    ).toThrow(/seed appears twice/);
  });
});
