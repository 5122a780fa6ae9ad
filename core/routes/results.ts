/** @file CLIP_benchmark's per-run result JSON, so its tooling can read clipeval's results. */
import type { Metrics } from './metrics';

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
