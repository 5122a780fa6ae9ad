import { type ClassColumns, type Features, accuracy } from './features';
import type { ProbeGraph } from './probe-graph';

/** What both recipes share: the ORT graph, the seed, abort and progress. */
export interface FitContext {
  graph: ProbeGraph;
  numClasses: number;
  seed: number;
  signal?: AbortSignal;
  progress: (phase: string, done: number, total: number) => void;
}

/** Parameters theta = [W (dim x k, row-major), b (k)] in float64, over fitted columns. */
export interface FittedProbe {
  theta: Float64Array;
  columns: ClassColumns;
  dim: number;
  iterations: number;
}

export interface RecipeOutcome {
  probe: FittedProbe;
  hyperparameter: number;
  valAccuracy?: number;
  notes: string[];
}

export function splitTheta(theta: Float64Array, dim: number, k: number) {
  return {
    w: Float32Array.from(theta.subarray(0, dim * k)),
    b: Float32Array.from(theta.subarray(dim * k, dim * k + k)),
  };
}

/** Val accuracy of a fitted probe on the rows cached with setScoringData. */
export async function valAccuracy(ctx: FitContext, probe: FittedProbe, val: Features) {
  const { w, b } = splitTheta(probe.theta, probe.dim, probe.columns.size);
  return accuracy(await ctx.graph.scores(w, b), val.labels, probe.columns.classes);
}

/**
 * A warm start for a fit over `to` columns from parameters over `from` columns: shared classes
 * keep their weights, new ones start at zero.
 */
export function remapTheta(
  theta: Float64Array,
  from: ClassColumns,
  to: ClassColumns,
  dim: number,
): Float64Array {
  const kf = from.size;
  const kt = to.size;
  const out = new Float64Array(dim * kt + kt);
  to.classes.forEach((c, jt) => {
    const jf = from.classes.indexOf(c);
    if (jf < 0) return;
    for (let d = 0; d < dim; d++) out[d * kt + jt] = theta[d * kf + jf]!;
    out[dim * kt + jt] = theta[dim * kf + jf]!;
  });
  return out;
}

/** 1e-2 as "0.01", 1e6 as "1e+6": short and exact enough for notes and phase names. */
export const fmt = (v: number) => Number(v.toPrecision(4)).toString();
