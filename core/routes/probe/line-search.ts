/** f(x) and its gradient; async because the heavy ones run in ONNX Runtime on another thread. */
export type Objective = (x: Float64Array) => Promise<{ f: number; g: Float64Array }>;

export interface LinePoint {
  step: number;
  x: Float64Array;
  f: number;
  g: Float64Array;
  /** Directional derivative g . p at this point. */
  slope: number;
}

export interface LineSearchResult {
  point: LinePoint;
  evaluations: number;
  /** false: no point met the strong Wolfe conditions within the budget; `point` is the best one with sufficient decrease, or the start (step 0) if none decreased f. */
  wolfe: boolean;
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Strong-Wolfe line search along `p` from `start` (Nocedal & Wright, Numerical Optimization,
 * algorithms 3.5 and 3.6): bracket, then zoom with a safeguarded cubic interpolation, falling
 * back to bisection. Strong Wolfe keeps s.y > 0, so every accepted step gives L-BFGS a usable
 * curvature pair. c1 = 1e-4 and c2 = 0.9 as in scipy's L-BFGS-B (used by scikit-learn).
 */
export async function wolfeLineSearch(
  fg: Objective,
  start: LinePoint,
  p: Float64Array,
  firstStep: number,
  opts: { c1?: number; c2?: number; maxEvaluations?: number } = {},
): Promise<LineSearchResult> {
  const c1 = opts.c1 ?? 1e-4;
  const c2 = opts.c2 ?? 0.9;
  const maxEvaluations = opts.maxEvaluations ?? 50;
  const f0 = start.f;
  const slope0 = start.slope;
  let evaluations = 0;
  const at = async (step: number): Promise<LinePoint> => {
    const x = start.x.map((v, i) => v + step * p[i]!);
    const { f, g } = await fg(x);
    evaluations++;
    return { step, x, f, g, slope: dot(g, p) };
  };
  const armijo = (q: LinePoint) => Number.isFinite(q.f) && q.f <= f0 + c1 * q.step * slope0;
  const curvature = (q: LinePoint) => Math.abs(q.slope) <= -c2 * slope0;
  const done = (point: LinePoint, wolfe: boolean) => ({ point, evaluations, wolfe });

  // lo: the best point so far with sufficient decrease; hi: the other end of the bracket.
  const zoom = async (lo: LinePoint, hi: LinePoint): Promise<LineSearchResult> => {
    while (evaluations < maxEvaluations) {
      const width = Math.abs(hi.step - lo.step);
      if (width <= 1e-12 * Math.max(1, lo.step)) break;
      const step = interpolate(lo, hi);
      const q = await at(step);
      if (!armijo(q) || q.f >= lo.f) hi = q;
      else {
        if (curvature(q)) return done(q, true);
        if (q.slope * (hi.step - lo.step) >= 0) hi = lo;
        lo = q;
      }
    }
    return done(lo, false);
  };

  let prev = start;
  let step = firstStep;
  while (evaluations < maxEvaluations) {
    const q = await at(step);
    if (!armijo(q) || (prev !== start && q.f >= prev.f)) return zoom(prev, q);
    if (curvature(q)) return done(q, true);
    if (q.slope >= 0) return zoom(q, prev);
    prev = q;
    step *= 2;
  }
  return done(prev, false);
}

/**
 * The minimiser of the cubic through both ends' values and slopes, kept at least 10% of the
 * bracket away from either end; bisection when the cubic has no usable minimum (or a value is
 * not finite, e.g. a step so long that the loss overflowed).
 */
function interpolate(a: LinePoint, b: LinePoint): number {
  const lo = Math.min(a.step, b.step);
  const hi = Math.max(a.step, b.step);
  const margin = 0.1 * (hi - lo);
  const d1 = a.slope + b.slope - (3 * (a.f - b.f)) / (a.step - b.step);
  const disc = d1 * d1 - a.slope * b.slope;
  if (Number.isFinite(disc) && disc >= 0) {
    const d2 = Math.sign(b.step - a.step) * Math.sqrt(disc);
    const t = b.step - ((b.step - a.step) * (b.slope + d2 - d1)) / (b.slope - a.slope + 2 * d2);
    if (Number.isFinite(t) && t >= lo + margin && t <= hi - margin) return t;
  }
  return (lo + hi) / 2;
}
