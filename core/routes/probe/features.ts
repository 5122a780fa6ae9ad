/** A probe's input: L2-normalised embedding rows [n, dim] and their class indices. */
export interface Features {
  x: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

export function checkFeatures(f: Features, numClasses: number, what: string): void {
  if (f.x.length !== f.n * f.dim || f.labels.length !== f.n)
    throw new Error(
      `probe ${what}: ${f.x.length} floats and ${f.labels.length} labels for ${f.n} rows of ${f.dim}`,
    );
  f.labels.forEach((y, i) => {
    if (!(y >= 0 && y < numClasses))
      throw new Error(`probe ${what}: label ${y} of row ${i} is not a class 0..${numClasses - 1}`);
  });
}

export function selectRows(f: Features, rows: readonly number[]): Features {
  const x = new Float32Array(rows.length * f.dim);
  rows.forEach((r, i) => x.set(f.x.subarray(r * f.dim, (r + 1) * f.dim), i * f.dim));
  return { x, labels: Int32Array.from(rows, (r) => f.labels[r]!), n: rows.length, dim: f.dim };
}

export function concatRows(a: Features, b: Features): Features {
  const x = new Float32Array((a.n + b.n) * a.dim);
  x.set(a.x);
  x.set(b.x, a.x.length);
  const labels = new Int32Array(a.n + b.n);
  labels.set(a.labels);
  labels.set(b.labels, a.n);
  return { x, labels, n: a.n + b.n, dim: a.dim };
}

/** Row indices of each class. */
export function rowsByClass(labels: Int32Array, numClasses: number): number[][] {
  const out = Array.from({ length: numClasses }, () => [] as number[]);
  labels.forEach((y, i) => out[y]!.push(i));
  return out;
}

/**
 * The classes a fit can learn: those with at least one training row. The fit runs over these
 * columns only (as scikit-learn's classes_ does); the others get a column that never wins.
 */
export class ClassColumns {
  /** Original class of each fitted column. */
  readonly classes: number[];
  private readonly column: Int32Array;

  constructor(labels: Int32Array, numClasses: number) {
    const present = new Uint8Array(numClasses);
    for (const y of labels) present[y] = 1;
    this.classes = [...present.keys()].filter((c) => present[c] === 1);
    this.column = new Int32Array(numClasses).fill(-1);
    this.classes.forEach((c, j) => (this.column[c] = j));
  }

  get size(): number {
    return this.classes.length;
  }

  /** One-hot targets [n, size]. Every label must be a fitted class. */
  oneHot(labels: Int32Array): Float32Array {
    const k = this.size;
    const out = new Float32Array(labels.length * k);
    labels.forEach((y, i) => (out[i * k + this.column[y]!] = 1));
    return out;
  }
}

/** Top-1 accuracy of logits [n, columns] whose column j stands for class columns.classes[j]. */
export function accuracy(logits: Float32Array, labels: Int32Array, classes: number[]): number {
  if (labels.length === 0) return 0;
  const k = classes.length;
  let correct = 0;
  labels.forEach((y, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
    if (classes[best] === y) correct++;
  });
  return correct / labels.length;
}
