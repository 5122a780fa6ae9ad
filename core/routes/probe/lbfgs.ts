import { dot, type LinePoint, type Objective, wolfeLineSearch } from './line-search';

export interface LbfgsOptions {
  maxIterations?: number;
  /** Stop when max |gradient| <= gtol (scipy's pgtol; scikit-learn passes its tol, 1e-4). */
  gtol?: number;
  /** Stop when (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol (scikit-learn: 64 * machine eps). */
  ftol?: number;
  /** Correction pairs kept (scipy's maxcor: 10). */
  memory?: number;
  /** Function evaluations per line search (scikit-learn: maxls 50). */
  maxLineSearch?: number;
  signal?: AbortSignal;
  onIteration?: (iteration: number, f: number) => void;
}

export type LbfgsStop = 'gradient' | 'stagnation' | 'max-iterations' | 'line-search';

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  g: Float64Array;
  iterations: number;
  evaluations: number;
  reason: LbfgsStop;
}

/**
 * Unconstrained L-BFGS (Nocedal & Wright algorithm 7.5: two-loop recursion, initial Hessian
 * scaled by s.y / y.y) with a strong-Wolfe line search, stopping like scipy's L-BFGS-B does for
 * scikit-learn. State stays in float64 whatever precision the objective computes in. If a line
 * search fails the memory is dropped and a steepest-descent step tried; if that fails too the
 * minimiser stops ('line-search'): with a float32 objective that is how stagnation at its noise
 * floor shows.
 */
export async function minimizeLbfgs(
  fg: Objective,
  x0: Float64Array,
  opts: LbfgsOptions = {},
): Promise<LbfgsResult> {
  const maxIterations = opts.maxIterations ?? 1000;
  const gtol = opts.gtol ?? 1e-4;
  const ftol = opts.ftol ?? 64 * Number.EPSILON;
  const memory = opts.memory ?? 10;
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const first = await fg(x0.slice());
  let evaluations = 1;
  let x: Float64Array = x0.slice();
  let { f, g } = first;
  let iterations = 0;
  const result = (reason: LbfgsStop): LbfgsResult => ({ x, f, g, iterations, evaluations, reason });

  for (;;) {
    if (maxAbs(g) <= gtol) return result('gradient');
    if (iterations >= maxIterations) return result('max-iterations');
    opts.signal?.throwIfAborted();
    let p = direction(g, s, y);
    let slope = dot(g, p);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      s.length = y.length = 0;
      p = g.map((v) => -v);
      slope = dot(g, p);
    }
    // Without curvature information the first step is scaled to unit length, as in scipy.
    const firstStep = s.length === 0 ? Math.min(1, 1 / Math.sqrt(dot(g, g))) : 1;
    const startPoint: LinePoint = { step: 0, x, f, g, slope };
    const ls = await wolfeLineSearch(fg, startPoint, p, firstStep, {
      maxEvaluations: opts.maxLineSearch ?? 50,
    });
    evaluations += ls.evaluations;
    const next = ls.point;
    if (next.step === 0 || !(next.f < f)) {
      if (s.length === 0) return result('line-search');
      s.length = y.length = 0;
      continue;
    }
    iterations++;
    const sk = next.x.map((v, i) => v - x[i]!);
    const yk = next.g.map((v, i) => v - g[i]!);
    // Keep only pairs with positive curvature (always so after a strong-Wolfe step).
    if (dot(sk, yk) > Number.EPSILON * dot(yk, yk)) {
      s.push(sk);
      y.push(yk);
      if (s.length > memory) {
        s.shift();
        y.shift();
      }
    }
    const previous = f;
    ({ x, f, g } = next);
    opts.onIteration?.(iterations, f);
    if (previous - f <= ftol * Math.max(Math.abs(previous), Math.abs(f), 1))
      return result('stagnation');
  }
}

/** -H g by the two-loop recursion over the stored pairs (oldest first). */
function direction(g: Float64Array, s: Float64Array[], y: Float64Array[]): Float64Array {
  const q = g.slice();
  const m = s.length;
  const alpha = new Float64Array(m);
  const rho = s.map((si, i) => 1 / dot(si, y[i]!));
  for (let i = m - 1; i >= 0; i--) {
    alpha[i] = rho[i]! * dot(s[i]!, q);
    axpy(-alpha[i]!, y[i]!, q);
  }
  if (m > 0) {
    const gamma = dot(s[m - 1]!, y[m - 1]!) / dot(y[m - 1]!, y[m - 1]!);
    for (let j = 0; j < q.length; j++) q[j]! *= gamma;
  }
  for (let i = 0; i < m; i++) {
    const beta = rho[i]! * dot(y[i]!, q);
    axpy(alpha[i]! - beta, s[i]!, q);
  }
  for (let j = 0; j < q.length; j++) q[j] = -q[j]!;
  return q;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += a * x[i]!;
}

export function maxAbs(v: Float64Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}
