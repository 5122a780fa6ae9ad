import { describe, expect, it } from 'vitest';
import { maxAbs, minimizeLbfgs } from '../../core/routes/probe/lbfgs';
import { dot, type Objective, wolfeLineSearch } from '../../core/routes/probe/line-search';
import { gaussian, seededRandom } from '../../core/util/random';

// The minimiser on its own, on functions with known minima (no ONNX Runtime here).

/** f = 1/2 x'Ax - b'x with A = diag(1..1000) + a rank-one term: ill-conditioned, SPD. */
function quadratic(n: number) {
  const normal = gaussian(seededRandom('probe-quadratic', n));
  const diag = Float64Array.from({ length: n }, (_, i) => 10 ** ((3 * i) / (n - 1)));
  const u = Float64Array.from({ length: n }, normal);
  const b = Float64Array.from({ length: n }, normal);
  const ax = (x: Float64Array) => {
    const ux = dot(u, x);
    return x.map((v, i) => diag[i]! * v + u[i]! * ux);
  };
  const fg: Objective = (x) => {
    const a = ax(x);
    return Promise.resolve({ f: 0.5 * dot(x, a) - dot(b, x), g: a.map((v, i) => v - b[i]!) });
  };
  // Exact minimiser by Sherman-Morrison: (D + uu')^-1 b.
  const dInvB = b.map((v, i) => v / diag[i]!);
  const dInvU = u.map((v, i) => v / diag[i]!);
  const k = dot(u, dInvB) / (1 + dot(u, dInvU));
  return { fg, solution: dInvB.map((v, i) => v - k * dInvU[i]!) };
}

/** The extended Rosenbrock function: minimum 0 at (1, ..., 1). */
const rosenbrock: Objective = (x) => {
  let f = 0;
  const g = new Float64Array(x.length);
  for (let i = 0; i + 1 < x.length; i += 2) {
    const a = x[i]!;
    const b = x[i + 1]!;
    f += 100 * (b - a * a) ** 2 + (1 - a) ** 2;
    g[i] = -400 * a * (b - a * a) - 2 * (1 - a);
    g[i + 1] = 200 * (b - a * a);
  }
  return Promise.resolve({ f, g });
};

describe('L-BFGS', () => {
  it('finds the minimiser of an ill-conditioned quadratic', async () => {
    // scipy's L-BFGS-B needs about 200 iterations on this problem too.
    const { fg, solution } = quadratic(30);
    const r = await minimizeLbfgs(fg, new Float64Array(30), { gtol: 1e-6, ftol: 0 });
    expect(r.reason).toBe('gradient');
    expect(maxAbs(r.g)).toBeLessThanOrEqual(1e-6);
    r.x.forEach((v, i) => expect(v).toBeCloseTo(solution[i]!, 5));
    expect(r.iterations).toBeLessThan(300);
    expect(r.evaluations).toBeLessThan(1.3 * r.iterations);
  });

  it('minimises the Rosenbrock function from the classic start', async () => {
    const x0 = Float64Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? -1.2 : 1));
    const r = await minimizeLbfgs(rosenbrock, x0, { gtol: 1e-9, ftol: 0 });
    expect(r.reason).toBe('gradient');
    expect(r.f).toBeLessThan(1e-14);
    for (const v of r.x) expect(v).toBeCloseTo(1, 6);
    expect(r.iterations).toBeLessThan(150);
    expect(r.evaluations).toBeLessThan(2 * r.iterations + 20);
  });

  it('stops at maxIterations and on stagnation', async () => {
    const x0 = Float64Array.of(-1.2, 1);
    const capped = await minimizeLbfgs(rosenbrock, x0, { maxIterations: 5 });
    expect(capped.reason).toBe('max-iterations');
    expect(capped.iterations).toBe(5);
    const loose = await minimizeLbfgs(rosenbrock, x0, { gtol: 0, ftol: 1e-3 });
    expect(loose.reason).toBe('stagnation');
  });

  it('stops at once when the start already meets the tolerance', async () => {
    const r = await minimizeLbfgs(rosenbrock, Float64Array.of(1, 1));
    expect(r).toMatchObject({ reason: 'gradient', iterations: 0, evaluations: 1 });
  });

  it('aborts between iterations with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by test');
    const x0 = Float64Array.of(-1.2, 1);
    const run = minimizeLbfgs(rosenbrock, x0, {
      gtol: 0,
      ftol: 0,
      maxIterations: 10_000,
      signal: controller.signal,
      onIteration: (i) => i === 3 && controller.abort(reason),
    });
    await expect(run).rejects.toBe(reason);
  });
});

describe('strong-Wolfe line search', () => {
  it('returns a step meeting both conditions, bracketing from a too-short and a too-long start', async () => {
    const { fg } = quadratic(30);
    const x = new Float64Array(30);
    const { f, g } = await fg(x);
    const p = g.map((v) => -v);
    const start = { step: 0, x, f, g, slope: dot(g, p) };
    for (const first of [1e-6, 1, 1e3]) {
      const r = await wolfeLineSearch(fg, start, p, first);
      expect(r.wolfe).toBe(true);
      expect(r.point.f).toBeLessThanOrEqual(f + 1e-4 * r.point.step * start.slope);
      expect(Math.abs(r.point.slope)).toBeLessThanOrEqual(0.9 * Math.abs(start.slope));
    }
  });
});
