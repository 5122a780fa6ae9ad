/**
 * @file Tip-Adapter-F (`run_tip_adapter_F` in the repo's main.py): the cache keys become the
 * weights of a bias-free linear layer (affinity = adapter(f)), trained with cross-entropy on the
 * tip logits at the initial alpha and beta; AdamW (torch's defaults but eps 1e-4: weight decay
 * 0.01) under CosineAnnealingLR over every step; the epoch of best val accuracy is kept.
 *
 * Each epoch sees every train image once, in a seeded order, as one of its views drawn by a
 * seeded generator (its center crop when extraction made no augmented views): the repo's
 * train loader re-augments each image every epoch the same way. Deterministic given the seed.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { seededRandom, shuffledIndices } from '../../util/random';
import { adamwState, adamwStep, cosineLr } from '../probe/adamw';
import {
  cacheLogits,
  clipLogits,
  combineLogits,
  matmulTransposed,
  top1Accuracy,
} from './tip-logits';

/** torch.optim.AdamW's default, which the repo keeps. */
const WEIGHT_DECAY = 0.01;
const EPS = 1e-4;

/** The train images: every view's row, the rows of each image (center crop first) and labels. */
export interface TrainImages {
  x: Float32Array;
  views: number[][];
  labels: Int32Array;
}

export interface FinetuneInput {
  /** Initial weights: the cache keys [nk, dim]. */
  cacheKeys: Float32Array;
  cacheLabels: Int32Array;
  /** Prototypes [numClasses, dim]: the classes the cross-entropy is over. */
  prototypes: Float32Array;
  numClasses: number;
  dim: number;
  logitScale: number;
  train: TrainImages;
  /** Val features [n, dim] and labels; with none, the last epoch is kept. */
  val: { x: Float32Array; labels: Int32Array };
  alpha: number;
  beta: number;
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
}

export interface FinetuneResult {
  /** The kept epoch's weights [nk, dim]. */
  weights: Float64Array;
  /** 1-based. */
  bestEpoch: number;
  /** Mean train cross-entropy per epoch. */
  losses: number[];
  /** Val accuracy after each epoch (at the initial alpha and beta); empty without val images. */
  valAcc: number[];
}

export async function finetuneTipAdapter(
  input: FinetuneInput,
  hooks: {
    onStep?: (p: { epoch: number; step: number; steps: number }) => void;
    signal?: AbortSignal;
  } = {},
): Promise<FinetuneResult> {
  const { train, dim, epochs, batchSize } = input;
  const weights = Float64Array.from(input.cacheKeys);
  const state = adamwState(weights.length);
  const n = train.labels.length;
  const steps = Math.ceil(n / batchSize);
  const losses: number[] = [];
  const valAcc: number[] = [];
  let best = { epoch: epochs, acc: -1, weights };
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = shuffledIndices(n, seededRandom('tip-adapter-f', 'order', input.seed, epoch));
    const pickView = seededRandom('tip-adapter-f', 'view', input.seed, epoch);
    const rows = order.map((i) => {
      const views = train.views[i]!;
      return views[Math.floor(pickView() * views.length)]!;
    });
    let lossSum = 0;
    for (let step = 0; step < steps; step++) {
      hooks.signal?.throwIfAborted();
      const batch = rows.slice(step * batchSize, (step + 1) * batchSize);
      const f = gatherRows(train.x, batch, dim);
      const labels = Int32Array.from(
        order.slice(step * batchSize, (step + 1) * batchSize),
        (i) => train.labels[i]!,
      );
      const { loss, grad } = lossAndGradient(input, weights, f, labels);
      lossSum += loss * labels.length;
      const lr = cosineLr(input.lr, epoch * steps + step, epochs * steps);
      adamwStep(weights, grad, state, { lr, weightDecay: WEIGHT_DECAY, eps: EPS });
      hooks.onStep?.({ epoch, step, steps });
      await yieldToEventLoop(); // lets heartbeats and cancellation through between steps
    }
    losses.push(lossSum / n);
    if (input.val.labels.length > 0) {
      const acc = evaluate(input, weights);
      valAcc.push(acc);
      if (acc > best.acc) best = { epoch: epoch + 1, acc, weights: Float64Array.from(weights) };
    }
  }
  return { weights: best.weights, bestEpoch: best.epoch, losses, valAcc };
}

/** Val accuracy of the current weights at the initial alpha and beta. */
function evaluate(input: FinetuneInput, weights: Float64Array): number {
  const { val, dim } = input;
  const clip = clipLogits(val.x, input.prototypes, dim, input.logitScale);
  const affinity = matmulTransposed(val.x, weights, dim);
  const cached = cacheLogits(affinity, input.cacheLabels, input.numClasses, input.beta);
  return top1Accuracy(combineLogits(clip, cached, input.alpha), val.labels);
}

/**
 * Mean cross-entropy of the tip logits over a batch and its gradient in the weights. With
 * A = exp(-beta (1 - f W^T)) and p = softmax(tip): d tip = (p - onehot) / B, d A[b, j] =
 * alpha d tip[b, label_j], d affinity = beta A d A, d W = d affinity^T f.
 */
export function lossAndGradient(
  input: Pick<
    FinetuneInput,
    'cacheLabels' | 'prototypes' | 'numClasses' | 'dim' | 'logitScale' | 'alpha' | 'beta'
  >,
  weights: Float64Array,
  f: Float64Array,
  labels: Int32Array,
): { loss: number; grad: Float64Array } {
  const { dim, numClasses: k, cacheLabels, alpha, beta } = input;
  const b = labels.length;
  const nk = cacheLabels.length;
  const affinity = matmulTransposed(f, weights, dim);
  const a = affinity.map((x) => Math.exp(-beta * (1 - x)));
  const cached = new Float64Array(b * k);
  for (let i = 0; i < b; i++)
    for (let j = 0; j < nk; j++) cached[i * k + cacheLabels[j]!]! += a[i * nk + j]!;
  const tip = combineLogits(clipLogits(f, input.prototypes, dim, input.logitScale), cached, alpha);
  let loss = 0;
  const dTip = new Float64Array(b * k);
  for (let i = 0; i < b; i++) {
    const row = tip.subarray(i * k, (i + 1) * k);
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(row[c]! - max);
    loss += Math.log(sum) + max - row[labels[i]!]!;
    for (let c = 0; c < k; c++) dTip[i * k + c] = Math.exp(row[c]! - max) / sum / b;
    dTip[i * k + labels[i]!]! -= 1 / b;
  }
  const grad = new Float64Array(nk * dim);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < nk; j++) {
      const dAff = beta * a[i * nk + j]! * alpha * dTip[i * k + cacheLabels[j]!]!;
      if (dAff === 0) continue;
      const g = j * dim;
      const x = i * dim;
      for (let d = 0; d < dim; d++) grad[g + d]! += dAff * f[x + d]!;
    }
  }
  return { loss: loss / b, grad };
}

function gatherRows(x: Float32Array, rows: readonly number[], dim: number): Float64Array {
  const out = new Float64Array(rows.length * dim);
  rows.forEach((r, i) => out.set(x.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}
