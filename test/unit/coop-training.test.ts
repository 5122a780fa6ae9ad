import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoopState } from '../../core/routes/coop/checkpoint';
import { buildPrompts, type PromptLayout } from '../../core/routes/coop/prompts';
import {
  type CoopTrainingConfig,
  gatherGradient,
  randomContext,
  scatterContext,
  trainCoop,
  type TrainingSet,
} from '../../core/routes/coop/trainer';
import { scaledCosineScores } from '../../core/routes/scores';
import { classPrototypes } from '../../core/routes/zero-shot/prototypes';
import { DEFAULT_TEMPLATES } from '../../core/routes/zero-shot/templates';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { CoopGraph } from '../../core/model/onnx/coop-graph';
import { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { gaussian, seededRandom } from '../../core/util/random';
import { type ClipTokenizer, tokenizerForBundle } from '../../core/model/text/tokenizer';
import { l2NormalizeRows } from '../../core/util/vectors';
import { TINY_BUNDLE } from '../helpers/fixtures';

// CoOp through the exported gradient graph on the tiny bundle: the gradient that reaches the
// context vectors, agreement with the text encoder, learning, and resuming from a checkpoint.
let bundle: ModelBundle;
let graph: CoopGraph;
let tokenizer: ClipTokenizer;
let text: ClipTextEncoder;
const CLASSES = ['cat', 'golden retriever', 'sports car', 'tench'];

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
  graph = await CoopGraph.create(bundle, { threads: 1 });
  text = await ClipTextEncoder.create(bundle, { threads: 1 });
  tokenizer = await tokenizerForBundle(bundle);
});
afterAll(async () => {
  await graph.close();
  await text.close();
});

const unitRows = (n: number, dim: number, seed: string) => {
  const g = gaussian(seededRandom(seed));
  return l2NormalizeRows(Float32Array.from({ length: n * dim }, g), dim);
};
const layoutOf = (nCtx: number): PromptLayout =>
  buildPrompts(tokenizer, CLASSES, { nCtx, position: 'end', maxLength: graph.maxLength });

describe('CoOp gradient graph', () => {
  it('its text features equal the text encoder when the context is the placeholder tokens', async () => {
    const layout = layoutOf(4);
    const tokens = await graph.tokenEmbeddings(layout.batch);
    const features = await graph.textFeatures(layout.batch, tokens);
    const encoded = await text.encode(layout.batch.ids.slice(), [4, layout.batch.length]);
    for (let i = 0; i < features.length; i++) expect(features[i]).toBeCloseTo(encoded[i]!, 5);
  });

  it('the gradient gathered to the context matches finite differences of the loss', async () => {
    const layout = layoutOf(4);
    const d = graph.embedDim;
    const params = randomContext(1, 4, graph.width, 7);
    const images = unitRows(6, d, 'fd-images');
    const targets = new Float32Array(6 * 4);
    for (let b = 0; b < 6; b++) targets[b * 4 + (b % 4)] = 1;
    const lossAt = async (p: Float32Array) =>
      (
        await graph.step(
          layout.batch,
          scatterContext(p, layout, graph.width, false),
          images.slice(),
          targets.slice(),
        )
      ).loss;
    const r = await graph.step(
      layout.batch,
      scatterContext(params, layout, graph.width, false),
      images.slice(),
      targets.slice(),
    );
    const grad = gatherGradient(r.gradCtx, layout, graph.width, false);
    // Central differences on the coordinates with the largest gradients (float32: eps 1e-3).
    const coords = [...grad.keys()]
      .sort((a, b) => Math.abs(grad[b]!) - Math.abs(grad[a]!))
      .slice(0, 6);
    for (const i of coords) {
      const up = params.slice();
      const down = params.slice();
      up[i]! += 1e-3;
      down[i]! -= 1e-3;
      const fd = ((await lossAt(up)) - (await lossAt(down))) / 2e-3;
      expect(Math.abs(fd - grad[i]!)).toBeLessThan(0.02 * Math.abs(grad[i]!) + 1e-4);
    }
  });
});

/**
 * A separable problem in the tiny model's embedding space that a context can solve: each class's
 * images lie around the text feature of its prompt under a hidden "teacher" context, plus noise.
 * Hand-written templates do not know that context, so zero-shot does worse.
 */
async function separableData(perClass: number, seed: string): Promise<TrainingSet> {
  const layout = layoutOf(8);
  const teacher = randomContext(1, 8, graph.width, 999);
  for (let i = 0; i < teacher.length; i++) teacher[i]! *= 50; // far from N(0, 0.02^2) inits
  const centers = await graph.textFeatures(
    layout.batch,
    scatterContext(teacher, layout, graph.width, false),
  );
  const d = graph.embedDim;
  const noise = gaussian(seededRandom(seed));
  const n = perClass * CLASSES.length;
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % CLASSES.length;
    for (let k = 0; k < d; k++) features[i * d + k] = centers[labels[i]! * d + k]! + 0.05 * noise();
  }
  l2NormalizeRows(features, d);
  return { features, labels, dim: d, rows: Array.from({ length: n }, (_, i) => [i]) };
}

const accuracy = (scores: Float32Array, labels: Int32Array, k: number) => {
  let right = 0;
  labels.forEach((y, i) => {
    const row = Array.from(scores.subarray(i * k, (i + 1) * k));
    right += row.indexOf(Math.max(...row)) === y ? 1 : 0;
  });
  return right / labels.length;
};

describe('CoOp training', () => {
  const cfg: CoopTrainingConfig = {
    epochs: 60,
    lr: 0.002,
    warmupEpochs: 1,
    warmupLr: 1e-5,
    classSpecific: false,
    momentum: 0.9,
    weightDecay: 5e-4,
    batchSize: 8,
    seed: 1,
  };
  const fresh = (): CoopState => {
    const ctx = randomContext(1, 8, graph.width, cfg.seed);
    return { epoch: 0, steps: 0, losses: [], ctx, momentum: new Float32Array(ctx.length) };
  };

  // Class-specific context (CSC): the tiny random text tower is too small for one shared
  // context to separate these classes, and CSC is one of CoOp's published variants.
  it('lowers the loss and beats zero-shot on a separable problem (CSC)', async () => {
    const layout = layoutOf(8);
    const train = await separableData(16, 'train');
    const test = await separableData(20, 'test');
    const csc = { ...cfg, classSpecific: true };
    const ctx0 = randomContext(CLASSES.length, 8, graph.width, cfg.seed);
    const state = await trainCoop(graph, layout, train, csc, {
      state: { ...fresh(), ctx: ctx0, momentum: new Float32Array(ctx0.length) },
      onEpoch: () => Promise.resolve(),
    });
    expect(state.losses).toHaveLength(csc.epochs);
    expect(state.losses.at(-1)!).toBeLessThan(0.5 * state.losses[0]!);

    const learned = await graph.textFeatures(
      layout.batch,
      scatterContext(state.ctx, layout, graph.width, true),
    );
    const coopAcc = accuracy(
      await scaledCosineScores(test.features, learned, test.dim, 100),
      test.labels,
      4,
    );
    const protos = await classPrototypes(
      { encoder: text, tokenizer, dim: test.dim },
      CLASSES,
      DEFAULT_TEMPLATES,
    );
    const zeroShotAcc = accuracy(
      await scaledCosineScores(test.features, protos, test.dim, 100),
      test.labels,
      4,
    );
    expect(coopAcc).toBeGreaterThan(zeroShotAcc);
    expect(coopAcc).toBeGreaterThan(0.9);
  });

  it('resuming from an epoch checkpoint gives exactly the uninterrupted result', async () => {
    const layout = layoutOf(8);
    const train = await separableData(16, 'train');
    const short = { ...cfg, epochs: 6 };
    const straight = await trainCoop(graph, layout, train, short, {
      state: fresh(),
      onEpoch: () => Promise.resolve(),
    });
    let saved: CoopState | undefined;
    const stop = new AbortController();
    await expect(
      trainCoop(graph, layout, train, short, {
        state: fresh(),
        signal: stop.signal,
        onEpoch: (s) => {
          // What the activity writes to S3: a copy of the state after the epoch.
          if (s.epoch === 3) {
            saved = {
              ...s,
              ctx: s.ctx.slice(),
              momentum: s.momentum.slice(),
              losses: [...s.losses],
            };
            stop.abort(new Error('worker killed'));
          }
          return Promise.resolve();
        },
      }),
    ).rejects.toThrow('worker killed');
    expect(saved?.epoch).toBe(3);
    const resumed = await trainCoop(graph, layout, train, short, {
      state: saved!,
      onEpoch: () => Promise.resolve(),
    });
    expect(resumed.losses).toEqual(straight.losses);
    expect(Array.from(resumed.ctx)).toEqual(Array.from(straight.ctx));
  });

  it('trains on the augmented views when an image has them, never on its center crop', async () => {
    const layout = layoutOf(8);
    const base = await separableData(4, 'views');
    const d = base.dim;
    const n = base.labels.length;
    // Row 2i: the center crop, poisoned with NaN; rows 2i+1 and 2i+2... : two augmented views.
    const features = new Float32Array(n * 3 * d).fill(Number.NaN);
    const rows = Array.from({ length: n }, (_, i) => {
      const view = base.features.subarray(i * d, (i + 1) * d);
      features.set(view, (3 * i + 1) * d);
      features.set(view, (3 * i + 2) * d);
      return [3 * i, 3 * i + 1, 3 * i + 2];
    });
    const state = await trainCoop(
      graph,
      layout,
      { features, dim: d, labels: base.labels, rows },
      { ...cfg, epochs: 3 },
      { state: fresh(), onEpoch: () => Promise.resolve() },
    );
    expect(state.losses.every(Number.isFinite)).toBe(true);
  });
});
