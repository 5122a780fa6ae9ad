import { describe, expect, it } from 'vitest';
import type { EmbeddingMatrix } from '../../core/embeddings/reader';
import {
  type FinetuneInput,
  finetuneTipAdapter,
  lossAndGradient,
} from '../../core/routes/tip-adapter/finetune';
import { hpGrid, searchHp } from '../../core/routes/tip-adapter/search';
import { tipData } from '../../core/routes/tip-adapter/tip-data';
import {
  clipLogits,
  matmulTransposed,
  tipLogits,
  tipScores,
} from '../../core/routes/tip-adapter/tip-logits';
import { gaussian, seededRandom } from '../../core/util/random';
import { l2NormalizeRows } from '../../core/util/vectors';
import { runPythonJson } from '../helpers/python';

/**
 * A numpy port of the Tip-Adapter repo's formulas (main.py run_tip_adapter, utils.py search_hp),
 * with cache_values as the one-hot matrix and cache_keys as [NK, D] rows (the repo holds them
 * transposed). The one deliberate difference: best_acc starts at -1 (the repo's 0 would leave
 * (0, 0), off the grid, when every point scores 0), which these inputs never reach anyway.
 */
const NUMPY_TIP = `
import json, sys
import numpy as np
a = json.load(sys.stdin)
d = a['dim']
f = np.array(a['f'], dtype=np.float64).reshape(-1, d)
W = np.array(a['W'], dtype=np.float64).reshape(-1, d)
keys = np.array(a['keys'], dtype=np.float64).reshape(-1, d)
values = np.eye(a['C'])[np.array(a['keyLabels'])]
def tip(feat, beta, alpha):
    clip_logits = a['scale'] * feat @ W.T
    affinity = feat @ keys.T
    cache_logits = np.exp((-1) * (beta - beta * affinity)) @ values
    return clip_logits + cache_logits * alpha
out = {'logits': tip(f, a['beta'], a['alpha']).ravel().tolist()}
if 'val' in a:
    val = np.array(a['val'], dtype=np.float64).reshape(-1, d)
    labels = np.array(a['valLabels'])
    s, st = a['searchScale'], a['searchStep']
    beta_list = [i * (s[0] - 0.1) / st[0] + 0.1 for i in range(st[0])]
    alpha_list = [i * (s[1] - 0.1) / st[1] + 0.1 for i in range(st[1])]
    best_acc, best_beta, best_alpha, accs = -1, 0, 0, set()
    for beta in beta_list:
        for alpha in alpha_list:
            acc = float((tip(val, beta, alpha).argmax(1) == labels).mean())
            accs.add(acc)
            if acc > best_acc:
                best_acc, best_beta, best_alpha = acc, beta, alpha
    out.update(beta=best_beta, alpha=best_alpha, acc=best_acc, distinct=len(accs),
               betas=beta_list, alphas=alpha_list)
print(json.dumps(out))
`;

interface NumpyTip {
  logits: number[];
  beta: number;
  alpha: number;
  acc: number;
  distinct: number;
  betas: number[];
  alphas: number[];
}

/** Unit rows near their class's center: a problem where the cache and the alpha/beta matter. */
function clusteredRows(rand: () => number, centers: Float32Array, labels: number[], noise: number) {
  const dim = centers.length / (Math.max(...labels) + 1);
  const g = gaussian(rand);
  const x = new Float32Array(labels.length * dim);
  labels.forEach((y, i) => {
    for (let d = 0; d < dim; d++) x[i * dim + d] = centers[y * dim + d]! + noise * g();
  });
  return l2NormalizeRows(x, dim);
}

function problem(seed: number, opts = { C: 5, dim: 16, shots: 3, val: 40 }) {
  const { C, dim, shots } = opts;
  const rand = seededRandom('tip-adapter-test', seed);
  const g = gaussian(rand);
  const centers = l2NormalizeRows(
    Float32Array.from({ length: C * dim }, () => g()),
    dim,
  );
  const classes = Array.from({ length: C }, (_, c) => c);
  // As CLIP's text features, the prototypes share one direction and differ a little (cosines
  // to an image differ by a few hundredths): zero-shot alone is weak, so the cache term matters.
  const common = Float32Array.from({ length: dim }, () => g());
  const W = l2NormalizeRows(
    Float32Array.from(
      { length: C * dim },
      (_, i) => common[i % dim]! + 0.03 * g() + 0.05 * centers[i]!,
    ),
    dim,
  );
  const keyLabels = classes.flatMap((c) => Array<number>(shots).fill(c));
  const keys = clusteredRows(rand, centers, keyLabels, 0.35);
  const valLabels = Array.from({ length: opts.val }, (_, i) => i % C);
  const val = clusteredRows(rand, centers, valLabels, 0.35);
  return {
    C,
    dim,
    W,
    keys,
    keyLabels: Int32Array.from(keyLabels),
    val,
    valLabels: Int32Array.from(valLabels),
  };
}

const plain = (a: ArrayLike<number>) => Array.from(a);

describe('Tip-Adapter logits', () => {
  it('equal a numpy port of the paper formula on fixed random inputs (rel. 1e-9)', async () => {
    const p = problem(1);
    const f = p.val.subarray(0, 7 * p.dim);
    const opts = { numClasses: p.C, logitScale: 100, alpha: 1.17, beta: 5.5 };
    const cache = { keys: p.keys, labels: p.keyLabels, dim: p.dim };
    const ours = tipLogits(f, p.W, cache, opts);
    const ref = runPythonJson(NUMPY_TIP, {
      dim: p.dim,
      C: p.C,
      f: plain(f),
      W: plain(p.W),
      keys: plain(p.keys),
      keyLabels: plain(p.keyLabels),
      scale: 100,
      alpha: 1.17,
      beta: 5.5,
    }) as NumpyTip;
    expect(ours.length).toBe(7 * p.C);
    // Both sides sum the same float32 inputs in float64; only the summation order differs.
    ref.logits.forEach((v, i) => expect(Math.abs(ours[i]! - v)).toBeLessThan(1e-9 * Math.abs(v)));
    // The blockwise float32 scorer the route uses agrees to float32 precision.
    const blocked = await tipScores(Float32Array.from(f), p.W, cache, opts);
    ref.logits.forEach((v, i) =>
      expect(Math.abs(blocked[i]! - v)).toBeLessThan(1e-6 * Math.abs(v)),
    );
  });

  it('search picks the alpha and beta the numpy port of search_hp picks', async () => {
    const p = problem(2);
    const searchScale = [7, 3] as const;
    const searchStep = [200, 20] as const;
    const ours = await searchHp({
      clip: clipLogits(p.val, p.W, p.dim, 100),
      affinity: matmulTransposed(p.val, p.keys, p.dim),
      cacheLabels: p.keyLabels,
      numClasses: p.C,
      labels: p.valLabels,
      searchScale,
      searchStep,
    });
    const ref = runPythonJson(NUMPY_TIP, {
      dim: p.dim,
      C: p.C,
      f: [],
      W: plain(p.W),
      keys: plain(p.keys),
      keyLabels: plain(p.keyLabels),
      scale: 100,
      alpha: 1,
      beta: 1,
      val: plain(p.val),
      valLabels: plain(p.valLabels),
      searchScale,
      searchStep,
    }) as NumpyTip;
    // The landscape is not flat (else any point would do), and the winner is not the first point.
    expect(ref.distinct).toBeGreaterThan(3);
    expect(ref.beta === hpGrid(7, 200)[0] && ref.alpha === hpGrid(3, 20)[0]).toBe(false);
    expect(hpGrid(7, 200)).toEqual(ref.betas);
    expect(hpGrid(3, 20)).toEqual(ref.alphas);
    expect(ours.beta).toBe(ref.beta);
    expect(ours.alpha).toBe(ref.alpha);
    expect(ours.acc).toBe(ref.acc);
  });

  it('search stays on the grid when every point scores 0', async () => {
    const p = problem(3);
    const wrong = Int32Array.from(p.valLabels, (y) => (y + 1) % p.C);
    // Labels no logit ever ranks first: give every row a huge clip logit on its true class.
    const clip = new Float64Array(p.valLabels.length * p.C);
    p.valLabels.forEach((y, i) => (clip[i * p.C + y] = 1e9));
    const best = await searchHp({
      clip,
      affinity: matmulTransposed(p.val, p.keys, p.dim),
      cacheLabels: p.keyLabels,
      numClasses: p.C,
      labels: wrong,
      searchScale: [7, 3],
      searchStep: [10, 5],
    });
    expect(best).toEqual({ beta: 0.1, alpha: 0.1, acc: 0 });
  });
});

describe('Tip-Adapter-F', () => {
  function finetuneInput(seed: number): FinetuneInput {
    const p = problem(seed, { C: 4, dim: 8, shots: 4, val: 12 });
    const rand = seededRandom('tip-adapter-test-views', seed);
    // Two views per train image: the key's own row and a perturbed copy.
    const x = new Float32Array(p.keys.length * 2);
    x.set(p.keys);
    x.set(
      l2NormalizeRows(
        Float32Array.from(p.keys, (v) => v + 0.1 * (rand() - 0.5)),
        p.dim,
      ),
      p.keys.length,
    );
    const n = p.keyLabels.length;
    return {
      cacheKeys: p.keys,
      cacheLabels: p.keyLabels,
      prototypes: p.W,
      numClasses: p.C,
      dim: p.dim,
      logitScale: 100,
      train: { x, views: Array.from({ length: n }, (_, i) => [i, n + i]), labels: p.keyLabels },
      val: { x: p.val, labels: p.valLabels },
      alpha: 1,
      beta: 1,
      epochs: 20,
      lr: 0.001,
      batchSize: 5,
      seed: 1,
    };
  }

  it('gradient matches central finite differences (rel. 1e-5)', () => {
    const input = finetuneInput(4);
    const { dim } = input;
    const weights = Float64Array.from(input.cacheKeys);
    const f = Float64Array.from(input.train.x.subarray(0, 6 * dim));
    const labels = input.train.labels.subarray(0, 6);
    const { grad } = lossAndGradient(input, weights, f, labels);
    const h = 1e-6;
    for (const i of [0, 3, 17, 40, weights.length - 1]) {
      const plus = Float64Array.from(weights);
      const minus = Float64Array.from(weights);
      plus[i]! += h;
      minus[i]! -= h;
      const numeric =
        (lossAndGradient(input, plus, f, labels).loss -
          lossAndGradient(input, minus, f, labels).loss) /
        (2 * h);
      expect(Math.abs(grad[i]! - numeric)).toBeLessThan(1e-5 * Math.abs(numeric) + 1e-9);
    }
  });

  it('training lowers the train loss, keeps the best val epoch and is deterministic', async () => {
    const input = finetuneInput(5);
    const a = await finetuneTipAdapter({ ...input, lr: 0.01 });
    const b = await finetuneTipAdapter({ ...input, lr: 0.01 });
    expect(a.losses).toHaveLength(20);
    expect(a.losses.at(-1)!).toBeLessThan(a.losses[0]! * 0.6);
    expect(a.valAcc).toHaveLength(20);
    // At the repo's lr the val accuracy peaks midway: that epoch's weights are kept, not the last.
    const d = await finetuneTipAdapter(input);
    expect(d.losses.at(-1)!).toBeLessThan(d.losses[0]!);
    const firstBest = d.valAcc.indexOf(Math.max(...d.valAcc)) + 1;
    expect(firstBest).toBeGreaterThan(1);
    expect(firstBest).toBeLessThan(20);
    expect(d.bestEpoch).toBe(firstBest);
    expect(plain(a.weights)).toEqual(plain(b.weights));
    expect(a.losses).toEqual(b.losses);
    // Another seed draws other batches and views: other weights.
    const c = await finetuneTipAdapter({ ...input, lr: 0.01, seed: 2 });
    expect(plain(c.weights)).not.toEqual(plain(a.weights));
  });
});

describe('Tip-Adapter data', () => {
  /** A matrix of `images` per class of 3 classes, each image with `views` rows (view 0 first). */
  function matrix(split: 'train' | 'val', images: number, views: number): EmbeddingMatrix {
    const dim = 4;
    const rows: EmbeddingMatrix['rows'] = [];
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < images; i++)
        for (let v = 0; v < views; v++)
          rows.push({ key: `${split}/${c}/${i}`, imageId: `${c}-${i}`, label: c, split, view: v });
    const rand = seededRandom('tip-data', split);
    const embeddings = l2NormalizeRows(
      Float32Array.from({ length: rows.length * dim }, () => rand() - 0.5),
      dim,
    );
    return { embeddings, dim, rows };
  }

  it('keys are the mean of an image’s augmented views, normalised (its center crop without any)', () => {
    const job = { shots: 2, seed: 1, protocol: 'all-classes' as const };
    for (const views of [1, 3]) {
      const train = matrix('train', 5, views);
      const d = tipData({ train, val: matrix('val', 3, 1) }, ['a', 'b', 'c'], job);
      expect(d.keyLabels).toEqual(Int32Array.from([0, 0, 1, 1, 2, 2]));
      expect(d.viewsPerKey).toBe(views === 1 ? 1 : 2);
      d.train.views.forEach((rows, i) => {
        const used = rows.length > 1 ? rows.slice(1) : rows;
        const mean = [0, 1, 2, 3].map((j) =>
          used.reduce((s, r) => s + train.embeddings[r * 4 + j]!, 0),
        );
        const norm = Math.hypot(...mean);
        mean.forEach((m, j) => expect(d.keys[i * 4 + j]).toBeCloseTo(m / norm, 6));
      });
      expect(d.val.labels).toEqual(Int32Array.from([0, 0, 1, 1, 2, 2])); // min(k, 4) per class
    }
  });

  it('under base-to-new holds base-class images only, and refuses an empty cache', () => {
    const job = { shots: 2, seed: 1, protocol: 'base-to-new' as const };
    const d = tipData(
      { train: matrix('train', 3, 1), val: matrix('val', 3, 1) },
      ['a', 'b', 'c'],
      job,
    );
    expect(d.keyLabels).toEqual(Int32Array.from([0, 0, 1, 1]));
    expect(d.val.labels).toEqual(Int32Array.from([0, 0, 1, 1]));
    const none = matrix('train', 0, 1);
    expect(() => tipData({ train: none, val: none }, ['a', 'b', 'c'], job)).toThrow(
      /no train image of a base class.*tipAdapter\.enabled: false/,
    );
  });
});
