import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProbeResult, probeScores, probeScoresInThread } from '../../core/routes/probe';
import { lossGradGraph, scoresGraph } from '../../core/routes/probe/graphs';
import { ProbeGraph } from '../../core/routes/probe/probe-graph';
import { gaussian, seededRandom } from '../../core/util/random';
import { SessionThread } from '../../core/model/onnx/session-thread';
import { runPythonJson } from '../helpers/python';

// The probe's ONNX graphs, built in TypeScript: valid ONNX, standard ops only, and the loss and
// gradient they compute against a float64 reference written out plainly and finite differences.

const N = 37;
const D = 11;
const K = 5;

function problem(seed: string) {
  const rand = seededRandom('probe-graph-test', seed);
  const normal = gaussian(rand);
  const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * K));
  const targets = new Float32Array(N * K);
  labels.forEach((y, i) => (targets[i * K + y] = 1));
  return {
    x: Float32Array.from({ length: N * D }, normal),
    targets,
    w: Float32Array.from({ length: D * K }, () => 0.5 * normal()),
    b: Float32Array.from({ length: K }, normal),
  };
}

/** Sum of cross-entropies and its gradient, in float64, one loop per formula. */
function reference(p: ReturnType<typeof problem>, w: ArrayLike<number> = p.w) {
  let loss = 0;
  const gradW = new Float64Array(D * K);
  const gradB = new Float64Array(K);
  for (let i = 0; i < N; i++) {
    const z = Array.from({ length: K }, (_, k) => {
      let s = p.b[k]!;
      for (let d = 0; d < D; d++) s += p.x[i * D + d]! * w[d * K + k]!;
      return s;
    });
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    for (let k = 0; k < K; k++) {
      const t = p.targets[i * K + k]!;
      loss -= t * (z[k]! - lse);
      const r = Math.exp(z[k]! - lse) - t;
      gradB[k]! += r;
      for (let d = 0; d < D; d++) gradW[d * K + k]! += p.x[i * D + d]! * r;
    }
  }
  return { loss, gradW, gradB };
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
};

describe('probe ONNX graphs', () => {
  it('are valid opset-17 ONNX models of standard ops (onnx.checker, full check)', () => {
    const out = runPythonJson(CHECK_GRAPHS, {
      graphs: [lossGradGraph(), scoresGraph()].map((g) => Buffer.from(g).toString('base64')),
    }) as { ops: string[]; opsets: number[]; inputs: string[][]; outputs: string[][] }[];
    const standard = ['Gemm', 'LogSoftmax', 'Mul', 'ReduceSum', 'Neg', 'Exp', 'Sub'];
    for (const g of out) {
      expect(g.opsets).toEqual([17]);
      for (const op of g.ops) expect(standard).toContain(op);
    }
    expect(out[0]!.inputs).toEqual([
      ['X', 'N', 'D'],
      ['targets', 'N', 'K'],
      ['W', 'D', 'K'],
      ['b', 'K'],
    ]);
    expect(out[0]!.outputs.map((o) => o[0])).toEqual(['loss', 'row_loss', 'grad_W', 'grad_b']);
    expect(out[1]!.outputs).toEqual([['logits', 'N', 'K']]);
  });

  describe('in ONNX Runtime', () => {
    let graph: ProbeGraph;
    beforeAll(async () => {
      graph = await ProbeGraph.start({ threads: 1 });
    });
    afterAll(() => graph.close());

    it('computes the loss and gradient of the float64 reference', async () => {
      const p = problem('a');
      await graph.setTrainingData(p.x, p.targets.slice(), N, D);
      const got = await graph.lossGrad(p.w, p.b);
      const ref = reference(p);
      expect(got.loss).toBeCloseTo(ref.loss, 4);
      expect(relErr(got.gradW, ref.gradW)).toBeLessThan(1e-5);
      expect(relErr(got.gradB, ref.gradB)).toBeLessThan(1e-5);
    });

    it('matches finite differences of its own loss and of the reference', async () => {
      const p = problem('b');
      await graph.setTrainingData(p.x, p.targets.slice(), N, D);
      const { gradW } = await graph.lossGrad(p.w, p.b);
      // Reference loss, central differences per weight (float64: tight).
      for (const i of [0, 7, 23, D * K - 1]) {
        const h = 1e-6;
        const plus = Float64Array.from(p.w);
        const minus = Float64Array.from(p.w);
        plus[i]! += h;
        minus[i]! -= h;
        const fd = (reference(p, plus).loss - reference(p, minus).loss) / (2 * h);
        expect(gradW[i]).toBeCloseTo(fd, 4);
      }
      // ORT's own loss along a random direction (float32 rows: a coarser step and tolerance).
      const normal = gaussian(seededRandom('probe-graph-direction'));
      const dir = Float32Array.from({ length: D * K }, normal);
      const h = 1e-2;
      const shifted = (s: number) => p.w.map((v, i) => v + s * h * dir[i]!);
      const fPlus = (await graph.lossGrad(shifted(1), p.b)).loss;
      const fMinus = (await graph.lossGrad(shifted(-1), p.b)).loss;
      const slope = gradW.reduce((a, g, i) => a + g * dir[i]!, 0);
      expect(Math.abs((fPlus - fMinus) / (2 * h) - slope)).toBeLessThan(1e-3 * Math.abs(slope));
    });

    it('keeps the cached rows between calls, and rows passed per call leave the cache alone', async () => {
      const p = problem('c');
      await graph.setTrainingData(p.x, p.targets.slice(), N, D);
      const cached = await graph.lossGrad(p.w, p.b);
      const q = problem('d');
      const perCall = await graph.lossGradRows(q.x.slice(), q.targets.slice(), N, p.w, p.b);
      expect(perCall.loss).toBeCloseTo(reference({ ...q, w: p.w, b: p.b }).loss, 4);
      const again = await graph.lossGrad(p.w, p.b);
      expect(again.loss).toBe(cached.loss);
      expect(again.gradW).toEqual(cached.gradW);
    });

    it('scores like probeScores (plain TypeScript), as does probeScoresInThread', async () => {
      const p = problem('e');
      await graph.setScoringData(p.x, N, D);
      const logits = await graph.scores(p.w, p.b);
      const result: ProbeResult = {
        weights: p.w,
        bias: p.b,
        numClasses: K,
        dim: D,
        selected: { validation: 'defaults' },
        iterations: 0,
        notes: [],
      };
      const plain = probeScores(result, p.x, N);
      expect(relErr(logits, plain)).toBeLessThan(1e-6);
      expect(relErr(await probeScoresInThread(result, p.x, N, { threads: 1 }), plain)).toBeLessThan(
        1e-6,
      );
    });
  });
});

describe('SessionThread feed cache', () => {
  it('adds cached feeds to runs, lets a run override them, and forgets them on request', async () => {
    const thread = await SessionThread.start(scoresGraph(), { providers: ['cpu'], threads: 1 });
    try {
      const t = (data: number[], dims: number[]) => ({
        type: 'float32' as const,
        data: Float32Array.from(data),
        dims,
      });
      // logits = X W + b with X 1x2, W 2x1, b 1.
      await thread.cacheFeeds({ X: t([1, 2], [1, 2]), b: t([10], [1]) });
      const run = (feeds: Parameters<SessionThread['run']>[0]) =>
        thread.run(feeds, ['logits']).then((o) => [...o.logits!.data]);
      expect(await run({ W: t([3, 4], [2, 1]) })).toEqual([21]);
      expect(await run({ W: t([3, 4], [2, 1]), b: t([0], [1]) })).toEqual([11]);
      expect(await run({ W: t([1, 1], [2, 1]) })).toEqual([13]);
      await thread.dropCachedFeeds(['b']);
      await expect(run({ W: t([1, 1], [2, 1]) })).rejects.toThrow(/input 'b' is missing/);
      await thread.dropCachedFeeds();
      expect(await run({ X: t([1, 1], [1, 2]), W: t([1, 1], [2, 1]), b: t([0], [1]) })).toEqual([
        2,
      ]);
    } finally {
      await thread.close();
    }
  });
});

const CHECK_GRAPHS = `
import base64, json, sys
import onnx
out = []
for g in json.load(sys.stdin)["graphs"]:
    m = onnx.load_from_string(base64.b64decode(g))
    onnx.checker.check_model(m, full_check=True)
    dims = lambda v: [v.name] + [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    out.append({
        "ops": sorted({n.op_type for n in m.graph.node}),
        "opsets": [o.version for o in m.opset_import],
        "inputs": [dims(v) for v in m.graph.input],
        "outputs": [dims(v) for v in m.graph.output],
    })
print(json.dumps(out))
`;
