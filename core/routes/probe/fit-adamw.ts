import { seededRandom, shuffledIndices } from '../../util/random';
import { adamwState, adamwStep, cosineLr } from './adamw';
import { ClassColumns, type Features } from './features';
import {
  type FitContext,
  type FittedProbe,
  type RecipeOutcome,
  fmt,
  splitTheta,
  valAccuracy,
} from './recipe';
import { CLIP_BENCHMARK_WD_GRID, clipBenchmarkSearchWeightDecay } from './selection';
import type { ValidationPlan } from './validation';

export interface AdamWRecipe {
  kind: 'adamw';
  /** A fixed weight decay: no selection. */
  weightDecay?: number;
  lr?: number;
  epochs?: number;
  batchSize?: number;
  weightDecayGrid?: number[];
}

interface Schedule {
  lr: number;
  epochs: number;
  batchSize: number;
}

/**
 * CLIP_benchmark's probe: a linear layer trained with AdamW on mini-batches, cross-entropy
 * averaged over the batch, lr set by a cosine schedule before every step. Every fit starts from
 * the same seeded init and sees the same seeded batch order (CLIP_benchmark reseeds torch before
 * each fit), so fits differ only in their weight decay. Init as torch.nn.Linear's:
 * U(-1/sqrt(dim), 1/sqrt(dim)) for weights and bias. The last batch of an epoch may be short.
 */
export async function trainAdamW(
  ctx: FitContext,
  data: Features,
  columns: ClassColumns,
  schedule: Schedule,
  weightDecay: number,
  phase: string,
): Promise<FittedProbe> {
  const { dim } = data;
  const k = columns.size;
  const bound = 1 / Math.sqrt(dim);
  const init = seededRandom('probe-adamw-init', ctx.seed);
  const theta = Float64Array.from({ length: dim * k + k }, () => (2 * init() - 1) * bound);
  const state = adamwState(theta.length);
  const targets = columns.oneHot(data.labels);
  const perEpoch = Math.ceil(data.n / schedule.batchSize);
  const total = schedule.epochs * perEpoch;
  const grad = new Float64Array(theta.length);
  let step = 0;
  for (let epoch = 0; epoch < schedule.epochs; epoch++) {
    const order = shuffledIndices(data.n, seededRandom('probe-adamw-order', ctx.seed, epoch));
    for (let start = 0; start < data.n; start += schedule.batchSize) {
      ctx.signal?.throwIfAborted();
      const rows = order.slice(start, start + schedule.batchSize);
      const xb = new Float32Array(rows.length * dim);
      const tb = new Float32Array(rows.length * k);
      rows.forEach((r, i) => {
        xb.set(data.x.subarray(r * dim, (r + 1) * dim), i * dim);
        tb.set(targets.subarray(r * k, (r + 1) * k), i * k);
      });
      const { w, b } = splitTheta(theta, dim, k);
      const r = await ctx.graph.lossGradRows(xb, tb, rows.length, w, b);
      for (let i = 0; i < dim * k; i++) grad[i] = r.gradW[i]! / rows.length;
      for (let j = 0; j < k; j++) grad[dim * k + j] = r.gradB[j]! / rows.length;
      adamwStep(theta, grad, state, { lr: cosineLr(schedule.lr, step, total), weightDecay });
      step++;
      if (step % 10 === 0 || step === total) ctx.progress(phase, step, total);
    }
  }
  return { theta, columns, dim, iterations: step };
}

/**
 * With a validation set, the weight decay is selected by CLIP_benchmark's search over
 * logspace(-6, 2, 97), then the probe is retrained on the final rows; without one it is 0,
 * as CLIP_benchmark does.
 */
export async function adamwRecipe(
  ctx: FitContext,
  recipe: AdamWRecipe,
  plan: ValidationPlan,
): Promise<RecipeOutcome> {
  const schedule: Schedule = {
    lr: recipe.lr ?? 0.1,
    epochs: recipe.epochs ?? 10,
    batchSize: recipe.batchSize ?? 64,
  };
  const notes: string[] = [];
  let weightDecay = 0;
  let selectedAccuracy: number | undefined;
  if (plan.source === 'fixed') {
    weightDecay = recipe.weightDecay ?? 0;
    notes.push(`weight decay ${fmt(weightDecay)} fixed by the recipe: no selection`);
  } else if (plan.source === 'defaults') {
    notes.push('weight decay 0 (CLIP_benchmark without a validation set) was used');
  } else {
    const { fitOn, val } = plan;
    const columns = new ClassColumns(fitOn.labels, ctx.numClasses);
    await ctx.graph.setScoringData(val.x, val.n, val.dim);
    let fits = 0;
    const score = async (wd: number) => {
      const phase = `adamw select wd=${fmt(wd)} (fit ${++fits})`;
      const probe = await trainAdamW(ctx, fitOn, columns, schedule, wd, phase);
      return valAccuracy(ctx, probe, val);
    };
    const selection = await clipBenchmarkSearchWeightDecay(
      score,
      recipe.weightDecayGrid ?? CLIP_BENCHMARK_WD_GRID,
    );
    weightDecay = selection.value;
    selectedAccuracy = selection.valAccuracy;
    notes.push(
      `weight decay ${fmt(weightDecay)} selected on ${val.n} validation images (val accuracy ${(100 * selection.valAccuracy).toFixed(2)}%) over ${selection.scored.length} fits`,
    );
  }
  const data = plan.finalRows;
  const columns = new ClassColumns(data.labels, ctx.numClasses);
  const probe = await trainAdamW(
    ctx,
    data,
    columns,
    schedule,
    weightDecay,
    `adamw final wd=${fmt(weightDecay)}`,
  );
  return {
    probe,
    hyperparameter: weightDecay,
    ...(selectedAccuracy !== undefined ? { valAccuracy: selectedAccuracy } : {}),
    notes,
  };
}
