import type { ClipTextEncoder } from '../../model/onnx/encoders';
import type { ClipTokenizer } from '../../model/text/tokenizer';
import { l2NormalizeRows } from '../../util/vectors';
import { fillTemplate } from './templates';

/**
 * CLIP's zero-shot classifier: for each class, every template filled with the class name is
 * encoded and L2-normalised, the embeddings are averaged, and the mean is L2-normalised again.
 * Returns the prototypes as rows [classes, dim].
 */
export async function classPrototypes(
  deps: { encoder: ClipTextEncoder; tokenizer: ClipTokenizer; dim: number },
  classNames: readonly string[],
  templates: readonly string[],
  opts: { batchSize?: number; onProgress?: (classesDone: number) => void } = {},
): Promise<Float32Array> {
  const { dim } = deps;
  const sums = new Float32Array(classNames.length * dim);
  const prompts = classNames.flatMap((name, c) =>
    templates.map((t) => ({ c, text: fillTemplate(t, name) })),
  );
  const batchSize = opts.batchSize ?? 256;
  for (let start = 0; start < prompts.length; start += batchSize) {
    const batch = prompts.slice(start, start + batchSize);
    const tokens = deps.tokenizer.encodeBatch(batch.map((p) => p.text));
    const embeddings = await deps.encoder.encode(tokens.ids, tokens.shape); // normalised rows
    batch.forEach((p, i) => {
      for (let d = 0; d < dim; d++) sums[p.c * dim + d]! += embeddings[i * dim + d]!;
    });
    opts.onProgress?.(Math.floor((start + batch.length) / templates.length));
  }
  // The mean's direction equals the sum's: normalising the sum is normalising the mean.
  return l2NormalizeRows(sums, dim);
}
