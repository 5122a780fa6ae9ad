/**
 * @file CoOp training on frozen image embeddings: each step scores a batch of images against the
 * prompts of every class and moves only the context vectors. The ONNX graph returns the loss
 * and d loss / d context for the whole [classes, length, width] prompt tensor; here the gradient
 * is gathered back to the learnable vectors (summed over classes for a shared context) and SGD
 * runs in TypeScript (a few thousand floats: cheap).
 */
import type { CoopGraph } from '../../model/onnx/coop-graph';
import { gaussian, seededRandom, shuffledIndices } from '../../util/random';
import { type CoopState, CoopDivergedError } from './checkpoint';
import type { PromptLayout } from './prompts';
import { type CoopSchedule, learningRate, sgdStep } from './schedule';

export interface CoopTrainingConfig extends CoopSchedule {
  classSpecific: boolean;
  momentum: number;
  weightDecay: number;
  batchSize: number;
  seed: number;
}

/** Few-shot training examples: embeddings [rows, P] and, per example, the rows of its views. */
export interface TrainingSet {
  features: Float32Array;
  dim: number;
  /** Class of each example. */
  labels: Int32Array;
  /** rows[i]: embedding rows of example i; [0] is the center crop, the rest augmented views. */
  rows: number[][];
}

/** Random N(0, 0.02^2) context (CoOp's default), one per class with CSC. */
export function randomContext(
  contexts: number,
  nCtx: number,
  width: number,
  seed: number,
): Float32Array {
  const normal = gaussian(seededRandom('coop-context', seed));
  return Float32Array.from({ length: contexts * nCtx * width }, () => 0.02 * normal());
}

/** The full prompt tensor [classes, length, width] with the context at its positions. */
export function scatterContext(
  params: Float32Array,
  layout: PromptLayout,
  width: number,
  classSpecific: boolean,
): Float32Array {
  const { classes, length } = layout.batch;
  const out = new Float32Array(classes * length * width);
  layout.positions.forEach((slots, c) => {
    const base = classSpecific ? c * layout.nCtx * width : 0;
    slots.forEach((p, j) => {
      out.set(params.subarray(base + j * width, base + (j + 1) * width), (c * length + p) * width);
    });
  });
  return out;
}

/** d loss / d context from d loss / d prompt tensor: a shared context sums over classes. */
export function gatherGradient(
  grad: Float32Array,
  layout: PromptLayout,
  width: number,
  classSpecific: boolean,
): Float32Array {
  const { classes, length } = layout.batch;
  const contexts = classSpecific ? classes : 1;
  const out = new Float32Array(contexts * layout.nCtx * width);
  layout.positions.forEach((slots, c) => {
    const base = classSpecific ? c * layout.nCtx * width : 0;
    slots.forEach((p, j) => {
      const from = (c * length + p) * width;
      for (let d = 0; d < width; d++) out[base + j * width + d]! += grad[from + d]!;
    });
  });
  return out;
}

export async function trainCoop(
  graph: CoopGraph,
  layout: PromptLayout,
  train: TrainingSet,
  cfg: CoopTrainingConfig,
  opts: {
    state: CoopState;
    onStep?: (p: { epoch: number; step: number; steps: number; loss: number }) => void;
    /** Called after every epoch with the new state (write the checkpoint here). */
    onEpoch: (state: CoopState) => Promise<void>;
    signal?: AbortSignal;
  },
): Promise<CoopState> {
  const n = train.labels.length;
  const classes = layout.batch.classes;
  const { dim } = train;
  // Dassl drops the last incomplete batch when there is at least one full batch.
  const batchSize = Math.min(cfg.batchSize, n);
  const stepsPerEpoch = Math.floor(n / batchSize);
  const state: CoopState = {
    ...opts.state,
    ctx: opts.state.ctx.slice(),
    momentum: opts.state.momentum.slice(),
    losses: [...opts.state.losses],
  };

  for (let epoch = state.epoch; epoch < cfg.epochs; epoch++) {
    // Order and views come from generators named by (seed, epoch): a resumed run repeats them.
    const order = shuffledIndices(n, seededRandom('coop-batches', cfg.seed, epoch));
    const pickView = seededRandom('coop-views', cfg.seed, epoch);
    const lr = learningRate(cfg, epoch);
    let lossSum = 0;
    for (let step = 0; step < stepsPerEpoch; step++) {
      opts.signal?.throwIfAborted();
      const batch = order.slice(step * batchSize, (step + 1) * batchSize);
      const images = new Float32Array(batch.length * dim);
      const targets = new Float32Array(batch.length * classes);
      batch.forEach((ex, b) => {
        const rows = train.rows[ex]!;
        // Augmented views stand in for CoOp's random crops; without them, the center crop.
        const row =
          rows.length > 1 ? rows[1 + Math.floor(pickView() * (rows.length - 1))]! : rows[0]!;
        images.set(train.features.subarray(row * dim, (row + 1) * dim), b * dim);
        targets[b * classes + train.labels[ex]!] = 1;
      });
      const ctx = scatterContext(state.ctx, layout, graph.width, cfg.classSpecific);
      const r = await graph.step(layout.batch, ctx, images, targets);
      if (!Number.isFinite(r.loss)) {
        throw new CoopDivergedError(
          `CoOp diverged: loss is ${r.loss} at epoch ${epoch + 1}, step ${step + 1}. The last good checkpoint (epoch ${state.epoch}) is kept; lower coop.lr.`,
        );
      }
      const grad = gatherGradient(r.gradCtx, layout, graph.width, cfg.classSpecific);
      sgdStep(state.ctx, grad, state.momentum, {
        lr,
        momentum: cfg.momentum,
        weightDecay: cfg.weightDecay,
        firstStep: state.steps === 0,
      });
      state.steps++;
      lossSum += r.loss;
      opts.onStep?.({ epoch, step, steps: stepsPerEpoch, loss: r.loss });
    }
    state.losses.push(lossSum / stepsPerEpoch);
    state.epoch = epoch + 1;
    await opts.onEpoch(state);
  }
  return state;
}
