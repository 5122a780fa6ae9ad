import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/**
 * logit_scale x cosine similarity of every image against every class vector: the decision rule
 * shared by zero-shot (class prototypes) and CoOp (learned prompt features). Both inputs are
 * L2-normalised rows, so the dot product is the cosine. Computed in blocks of rows with a yield
 * between blocks, so a large test split never stalls the worker's event loop (heartbeats).
 */
export async function scaledCosineScores(
  images: Float32Array,
  classes: Float32Array,
  dim: number,
  logitScale: number,
): Promise<Float32Array> {
  const n = images.length / dim;
  const k = classes.length / dim;
  const out = new Float32Array(n * k);
  const BLOCK = 256;
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    for (let i = start; i < end; i++) {
      const row = i * dim;
      for (let c = 0; c < k; c++) {
        const col = c * dim;
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += images[row + d]! * classes[col + d]!;
        out[i * k + c] = logitScale * dot;
      }
    }
    if (end < n) await yieldToEventLoop();
  }
  return out;
}
