import { createHash } from 'node:crypto';

/**
 * A deterministic uniform [0, 1) generator (xorshift128+ seeded by the sha256 of its parts).
 * Every random choice in clipeval (augmented views, few-shot samples, batch order, CoOp's
 * initial context) draws from one of these, named by what it is for, so a re-run or a resumed
 * run makes exactly the same choices.
 */
export function seededRandom(...parts: readonly (string | number)[]): () => number {
  const h = createHash('sha256').update(parts.join('\0')).digest();
  let s0 = h.readBigUInt64LE(0) | 1n;
  let s1 = h.readBigUInt64LE(8) | 2n;
  const mask = (1n << 64n) - 1n;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & mask) >> 11n) / 2 ** 53;
  };
}

/** Fisher-Yates shuffle of 0..n-1 with the given generator. */
export function shuffledIndices(n: number, rand: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Standard normal draws (Box-Muller) from a uniform generator. */
export function gaussian(rand: () => number): () => number {
  return () => {
    const u = 1 - rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}
