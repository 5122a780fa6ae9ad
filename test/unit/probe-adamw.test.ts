import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamwState, adamwStep, cosineLr } from '../../core/routes/probe/adamw';
import { ClassColumns } from '../../core/routes/probe/features';
import { trainAdamW } from '../../core/routes/probe/fit-adamw';
import { ProbeGraph } from '../../core/routes/probe/probe-graph';
import { type FitContext, valAccuracy } from '../../core/routes/probe/recipe';
import {
  CLIP_BENCHMARK_WD_GRID,
  clipBenchmarkSearchWeightDecay,
} from '../../core/routes/probe/selection';
import { clusterProblem } from '../helpers/probe-data';

// CLIP_benchmark's recipe: the AdamW update, the cosine schedule, the weight-decay search, and
// a small seeded training run.

describe('AdamW step', () => {
  it('matches torch.optim.AdamW step by step', () => {
    // Expected values printed by torch 2.15: AdamW([p], lr=0.1, weight_decay=0.01), float64,
    // p = [1, -2], three steps with the gradients below.
    const p = Float64Array.of(1, -2);
    const state = adamwState(2);
    const expected = [
      [0.899000002, -1.898000001],
      [0.7981010039980005, -1.869468297369903],
      [0.7457375636065191, -1.9133320077276534],
    ];
    [
      [0.5, -1],
      [0.5, 0.5],
      [-0.25, 2],
    ].forEach((g, i) => {
      adamwStep(p, g, state, { lr: 0.1, weightDecay: 0.01 });
      expect(p[0]).toBeCloseTo(expected[i]![0]!, 12);
      expect(p[1]).toBeCloseTo(expected[i]![1]!, 12);
    });
  });

  it('first step by hand: decay, then lr * sign(g) (bias-corrected moments cancel)', () => {
    const p = Float64Array.of(2);
    adamwStep(p, [-3], adamwState(1), { lr: 0.5, weightDecay: 0.2 });
    // 2 * (1 - 0.5 * 0.2) + 0.5 * 3 / (3 + 1e-8 * sqrt(1 - 0.999))... = 1.8 + 0.5
    expect(p[0]).toBeCloseTo(2.3, 7);
  });
});

describe('cosine schedule', () => {
  it('starts at the base lr, halves midway and nears 0 at the last step', () => {
    expect(cosineLr(0.1, 0, 100)).toBe(0.1);
    expect(cosineLr(0.1, 50, 100)).toBeCloseTo(0.05, 12);
    expect(cosineLr(0.1, 99, 100)).toBeCloseTo(0.1 * 0.5 * (1 + Math.cos((Math.PI * 99) / 100)));
  });
});

describe("CLIP_benchmark's weight-decay search", () => {
  it('walks 7 coarse points then spans 8, 4, 2, 1 around the peak', async () => {
    // Val accuracy peaks between grid indices 41 and 42 (at 41.3, so no ties): a unimodal
    // curve over log10(wd), distances below in grid steps.
    const peak = -6 + (41.3 * 8) / 96;
    const score = (wd: number) => Promise.resolve(1 - 0.1 * Math.abs(Math.log10(wd) - peak));
    const s = await clipBenchmarkSearchWeightDecay(score);
    expect(s.value).toBe(CLIP_BENCHMARK_WD_GRID[41]);
    // Coarse 0, 16, ..., 96: peak 48 (6.7 away). Span 8: 40 (1.3) beats 48 and 56. Span 4: 36
    // and 44 (2.7) lose to 40. Span 2: 42 (0.7) wins over 38 and 40. Span 1: 41 (0.3) over 43.
    const idx = (v: number) => CLIP_BENCHMARK_WD_GRID.indexOf(v);
    expect(s.scored.map((x) => idx(x.value))).toEqual([
      0, 16, 32, 48, 64, 80, 96, 40, 56, 36, 44, 38, 42, 41, 43,
    ]);
  });

  it('keeps the first of equal scores, and index 0 when every score is 0 (as the original)', async () => {
    const flat = await clipBenchmarkSearchWeightDecay(() => Promise.resolve(0.5));
    expect(flat.value).toBe(CLIP_BENCHMARK_WD_GRID[0]);
    const zero = await clipBenchmarkSearchWeightDecay(() => Promise.resolve(0));
    expect(zero.value).toBe(CLIP_BENCHMARK_WD_GRID[0]);
    expect(CLIP_BENCHMARK_WD_GRID).toHaveLength(97);
    expect(CLIP_BENCHMARK_WD_GRID[96]).toBe(100);
    expect(CLIP_BENCHMARK_WD_GRID[48]).toBeCloseTo(0.01, 15);
  });
});

describe('AdamW training in ONNX Runtime', () => {
  let graph: ProbeGraph;
  beforeAll(async () => {
    graph = await ProbeGraph.start({ threads: 1 });
  });
  afterAll(() => graph.close());

  const sample = clusterProblem({ dim: 16, classes: 4, spread: 0.25, seed: 3 });
  const data = sample(300, 'train');
  const columns = new ClassColumns(data.labels, 4);
  const ctx = (seed: number): FitContext => ({
    graph,
    numClasses: 4,
    seed,
    progress: () => undefined,
  });
  const schedule = { lr: 0.1, epochs: 3, batchSize: 64 };

  it('is seeded: same seed, same weights; another seed, other weights', async () => {
    const a = await trainAdamW(ctx(1), data, columns, schedule, 1e-4, 't');
    const b = await trainAdamW(ctx(1), data, columns, schedule, 1e-4, 't');
    const c = await trainAdamW(ctx(2), data, columns, schedule, 1e-4, 't');
    expect(a.theta).toEqual(b.theta);
    expect(a.theta).not.toEqual(c.theta);
    // 300 rows in batches of 64: 5 steps per epoch, the last one short.
    expect(a.iterations).toBe(15);
  });

  it('learns the clusters, and heavy weight decay shrinks the weights', async () => {
    await graph.setScoringData(data.x, data.n, data.dim);
    const light = await trainAdamW(ctx(1), data, columns, schedule, 0, 't');
    const heavy = await trainAdamW(ctx(1), data, columns, schedule, 5, 't');
    expect(await valAccuracy(ctx(1), light, data)).toBeGreaterThan(0.9);
    const norm = (t: Float64Array) => Math.hypot(...t.subarray(0, 16 * 4));
    expect(norm(heavy.theta)).toBeLessThan(0.5 * norm(light.theta));
  });
});
