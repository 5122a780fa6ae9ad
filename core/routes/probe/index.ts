/**
 * @file The linear probe on frozen image embeddings, two published recipes:
 * - 'lbfgs': the CLIP paper / CoOp baseline, scikit-learn's multinomial LogisticRegression
 *   (lbfgs) with C selected by CoOp's search on a validation set (fit-lbfgs.ts);
 * - 'adamw': CLIP_benchmark's linear layer trained with AdamW, weight decay selected by its
 *   search (fit-adamw.ts).
 * The loss and gradient over all rows run in ONNX Runtime in worker threads (probe-graph.ts);
 * only vector algebra on the D*K+K parameters runs on the calling thread. A recipe that names
 * its C or weight decay skips selection ('fixed'). See validation.ts for what happens without a
 * val split.
 */
import { DatasetError } from '../../dataset/types';
import { type ExecutionProvider, SessionThread } from '../../model/onnx/session-thread';
import { type AdamWRecipe, adamwRecipe } from './fit-adamw';
import { type LbfgsRecipe, lbfgsRecipe } from './fit-lbfgs';
import { type Features, checkFeatures } from './features';
import { scoresGraph } from './graphs';
import { ProbeGraph } from './probe-graph';
import { type FitContext, type RecipeOutcome, fmt } from './recipe';
import { type ValidationSource, planValidation } from './validation';

export type { Features } from './features';
export type { AdamWRecipe } from './fit-adamw';
export type { LbfgsRecipe } from './fit-lbfgs';
export type ProbeRecipe = LbfgsRecipe | AdamWRecipe;

export interface ProbeResult {
  /** [dim, numClasses], row-major. */
  weights: Float32Array;
  bias: Float32Array;
  numClasses: number;
  dim: number;
  selected: {
    C?: number;
    weightDecay?: number;
    valAccuracy?: number;
    validation: ValidationSource;
  };
  /** Iterations (L-BFGS) or optimiser steps (AdamW) of the final fit. */
  iterations: number;
  notes: string[];
}

export interface TrainProbeOptions {
  train: Features;
  val?: Features;
  numClasses: number;
  recipe: ProbeRecipe;
  seed: number;
  providers?: ExecutionProvider[];
  /** ONNX Runtime intra-op threads; 0 (default): one per core. */
  threads?: number;
  /** Checked before every loss evaluation: aborting rejects with the signal's reason. */
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
}

/**
 * Bias of a class that had no training rows: its column (zero weights) never wins against a
 * learned one, and stays finite for whatever consumes scores.
 */
export const ABSENT_CLASS_BIAS = -1e9;

export async function trainProbe(opts: TrainProbeOptions): Promise<ProbeResult> {
  const { train, val, numClasses, recipe, seed } = opts;
  if (!(Number.isInteger(numClasses) && numClasses >= 1))
    throw new Error(`probe: numClasses must be a positive integer, got ${numClasses}`);
  checkFeatures(train, numClasses, 'train');
  // Deterministic (every image of the train split was skipped or failed): not retried.
  if (train.n === 0)
    throw new DatasetError('probe: no training images (none of the train split could be used)');
  if (val) {
    checkFeatures(val, numClasses, 'val');
    if (val.dim !== train.dim)
      throw new Error(`probe: val rows have ${val.dim} dims, train rows ${train.dim}`);
  }
  opts.signal?.throwIfAborted();
  const fixed = recipe.kind === 'lbfgs' ? recipe.C !== undefined : recipe.weightDecay !== undefined;
  const plan = planValidation(train, val, numClasses, seed, fixed);
  const graph = await ProbeGraph.start({
    ...(opts.providers ? { providers: opts.providers } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  const ctx: FitContext = {
    graph,
    numClasses,
    seed,
    ...(opts.signal ? { signal: opts.signal } : {}),
    progress: (phase, done, total) => opts.onProgress?.({ phase, done, total }),
  };
  let outcome: RecipeOutcome;
  try {
    outcome =
      recipe.kind === 'lbfgs'
        ? await lbfgsRecipe(ctx, recipe, plan)
        : await adamwRecipe(ctx, recipe, plan);
  } finally {
    await graph.close();
  }
  const notes = [...(plan.note ? [plan.note] : []), ...outcome.notes];
  const result = expandColumns(outcome, numClasses);
  const absent = numClasses - outcome.probe.columns.size;
  if (absent > 0)
    notes.push(
      `${absent} class(es) had no training images: their scores are ${fmt(ABSENT_CLASS_BIAS)}, so they are never predicted`,
    );
  return {
    ...result,
    selected: {
      ...(recipe.kind === 'lbfgs'
        ? { C: outcome.hyperparameter }
        : { weightDecay: outcome.hyperparameter }),
      ...(outcome.valAccuracy !== undefined ? { valAccuracy: outcome.valAccuracy } : {}),
      validation: plan.source,
    },
    iterations: outcome.probe.iterations,
    notes,
  };
}

/** Parameters over the fitted columns, laid out over all classes. */
function expandColumns(outcome: RecipeOutcome, numClasses: number) {
  const { theta, columns, dim } = outcome.probe;
  const k = columns.size;
  const weights = new Float32Array(dim * numClasses);
  const bias = new Float32Array(numClasses).fill(ABSENT_CLASS_BIAS);
  columns.classes.forEach((c, j) => {
    for (let d = 0; d < dim; d++) weights[d * numClasses + c] = theta[d * k + j]!;
    bias[c] = theta[dim * k + j]!;
  });
  return { weights, bias, numClasses, dim };
}

/**
 * Logits [n, numClasses] = x W + b for rows x [n, dim], in plain TypeScript on the calling
 * thread: fine for small inputs, but it holds the event loop (10,000 x 512 x 100: about 1.2 s on
 * the 2-core development machine). Activities should use probeScoresInThread.
 */
export function probeScores(result: ProbeResult, x: Float32Array, n: number): Float32Array {
  const { dim, numClasses: k, weights, bias } = result;
  if (x.length !== n * dim) throw new Error(`probeScores: ${x.length} floats for ${n} x ${dim}`);
  const out = new Float32Array(n * k);
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) row[j] = bias[j]!;
    for (let d = 0; d < dim; d++) {
      const v = x[i * dim + d]!;
      if (v === 0) continue;
      const w = d * k;
      for (let j = 0; j < k; j++) row[j]! += v * weights[w + j]!;
    }
    out.set(row, i * k);
  }
  return out;
}

/** probeScores computed by ONNX Runtime in a worker thread (the event loop stays free). */
export async function probeScoresInThread(
  result: ProbeResult,
  x: Float32Array,
  n: number,
  opts: { providers?: ExecutionProvider[]; threads?: number } = {},
): Promise<Float32Array> {
  const { dim, numClasses: k } = result;
  if (x.length !== n * dim) throw new Error(`probeScores: ${x.length} floats for ${n} x ${dim}`);
  if (n === 0) return new Float32Array(0);
  const thread = await SessionThread.start(scoresGraph(), {
    providers: opts.providers ?? ['cpu'],
    threads: opts.threads ?? 0,
  });
  try {
    const out = await thread.run(
      {
        X: { type: 'float32', data: x.slice(), dims: [n, dim] },
        W: { type: 'float32', data: result.weights.slice(), dims: [dim, k] },
        b: { type: 'float32', data: result.bias.slice(), dims: [k] },
      },
      ['logits'],
    );
    return out.logits!.data;
  } finally {
    await thread.close();
  }
}
