import type { Metrics } from './metrics';

/**
 * Result layouts other tools read: CLIP_benchmark's per-run JSON, and CoOp's summary over seeds.
 */
export interface ClipBenchmarkResult {
  dataset: string;
  model: string;
  pretrained: string;
  task: string;
  /** Fractions in [0, 1], as CLIP_benchmark writes them. acc5 is null below 5 classes (NaN there). */
  metrics: { acc1: number; acc5: number | null; mean_per_class_recall: number };
  language: string;
}

export function clipBenchmarkResult(input: {
  dataset: string;
  model: string;
  pretrained: string;
  task: string;
  metrics: Pick<Metrics, 'acc1' | 'acc5' | 'meanPerClassRecall'>;
  language?: string;
}): ClipBenchmarkResult {
  const { metrics } = input;
  return {
    dataset: input.dataset,
    model: input.model,
    pretrained: input.pretrained,
    task: input.task,
    metrics: {
      acc1: metrics.acc1,
      acc5: metrics.acc5,
      mean_per_class_recall: metrics.meanPerClassRecall,
    },
    language: input.language ?? 'en',
  };
}

export interface SeedSummary {
  mean: number;
  /**
   * Population standard deviation (ddof = 0): CoOp's parse_test_res.py reports np.std(values)
   * with numpy's default ddof, so "mean +- std" over seeds 1, 2, 3 compares with its tables.
   */
  std: number;
  n: number;
  values: number[];
}

export function summarizeSeeds(values: readonly number[]): SeedSummary {
  if (values.length === 0) throw new Error('summarizeSeeds: no values');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  return { mean, std: Math.sqrt(variance), n, values: [...values] };
}

export interface FewShotRun {
  shots: number | 'all';
  seed: number;
  metrics: Pick<Metrics, 'acc1' | 'acc5' | 'meanPerClassRecall' | 'macroF1'>;
}

export interface FewShotSummary {
  shots: number | 'all';
  /** Ascending; every SeedSummary's values are in this order. */
  seeds: number[];
  acc1: SeedSummary;
  /** null when the dataset has fewer than 5 classes (every run's acc5 is null). */
  acc5: SeedSummary | null;
  meanPerClassRecall: SeedSummary;
  macroF1: SeedSummary;
}

/** One summary per shot count (ascending, `all` last), over the seeds run at that count. */
export function summarizeFewShot(results: readonly FewShotRun[]): FewShotSummary[] {
  const byShots = new Map<number | 'all', FewShotRun[]>();
  for (const r of results) byShots.set(r.shots, [...(byShots.get(r.shots) ?? []), r]);
  const order = (s: number | 'all') => (s === 'all' ? Infinity : s);
  return [...byShots.entries()]
    .sort(([a], [b]) => order(a) - order(b))
    .map(([shots, runs]) => {
      const sorted = [...runs].sort((a, b) => a.seed - b.seed);
      const seeds = sorted.map((r) => r.seed);
      if (new Set(seeds).size !== seeds.length)
        throw new Error(`summarizeFewShot: a seed appears twice at ${shots} shots`);
      const acc5 = sorted.map((r) => r.metrics.acc5);
      const withAcc5 = acc5.filter((v): v is number => v !== null);
      if (withAcc5.length !== 0 && withAcc5.length !== acc5.length)
        throw new Error(`summarizeFewShot: acc5 is missing for some seeds at ${shots} shots`);
      return {
        shots,
        seeds,
        acc1: summarizeSeeds(sorted.map((r) => r.metrics.acc1)),
        acc5: withAcc5.length > 0 ? summarizeSeeds(withAcc5) : null,
        meanPerClassRecall: summarizeSeeds(sorted.map((r) => r.metrics.meanPerClassRecall)),
        macroF1: summarizeSeeds(sorted.map((r) => r.metrics.macroF1)),
      };
    });
}
