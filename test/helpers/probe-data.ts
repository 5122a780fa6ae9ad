import type { Features } from '../../core/routes/probe';
import { seededRandom } from '../../core/util/random';
import { l2NormalizeRows } from '../../core/util/vectors';

/**
 * A seeded synthetic probe problem (tests and bench/probe.ts): one random unit mean per class,
 * rows = mean + N(0, spread^2) per coordinate, then L2-normalised like CLIP embeddings. With
 * spread around 1/sqrt(dim) to 2/sqrt(dim) the clusters overlap: neither trivially separable nor
 * hopeless. `sample(n, part)` draws a split; different parts are independent draws.
 */
export function clusterProblem(opts: {
  dim: number;
  classes: number;
  spread: number;
  seed: number;
}) {
  const { dim, classes, spread, seed } = opts;
  const normal = fastNormal(seededRandom('probe-clusters', seed, 'means'));
  const means = l2NormalizeRows(Float32Array.from({ length: classes * dim }, normal), dim);
  return (n: number, part: string): Features => {
    const rand = seededRandom('probe-clusters', seed, part);
    const noise = fastNormal(rand);
    const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * classes));
    const x = new Float32Array(n * dim);
    labels.forEach((y, i) => {
      for (let d = 0; d < dim; d++) x[i * dim + d] = means[y * dim + d]! + spread * noise();
    });
    return { x: l2NormalizeRows(x, dim), labels, n, dim };
  };
}

/**
 * Standard normal draws from a 32-bit generator seeded by `rand` (mulberry32 + Box-Muller): the
 * project's seededRandom uses BigInt arithmetic, too slow for the bench's 30 million draws.
 */
function fastNormal(rand: () => number): () => number {
  let s = Math.floor(rand() * 2 ** 32) >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}
