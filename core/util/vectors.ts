/** Row-wise L2 normalisation of a [rows, dim] matrix, in place. Zero rows stay zero. */
export function l2NormalizeRows(m: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < m.length; r += dim) {
    let s = 0;
    for (let i = r; i < r + dim; i++) s += m[i]! * m[i]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = r; i < r + dim; i++) m[i]! *= inv;
  }
  return m;
}

/** Cosine similarity of two vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}
