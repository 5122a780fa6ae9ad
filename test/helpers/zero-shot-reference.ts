import type { ModelBundle } from '../../core/model/bundle';
import { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { tokenizerForBundle } from '../../core/model/text/tokenizer';
import { scaledCosineScores } from '../../core/routes/scores';
import { classPrototypes } from '../../core/routes/zero-shot/prototypes';

/**
 * Zero-shot scores [n, K] computed here, straight from the bundle's text tower and the given
 * names and templates: what the integration tests check a run's stored zero-shot results against.
 */
export async function directZeroShotScores(
  bundle: ModelBundle,
  embeddings: Float32Array,
  classNames: readonly string[],
  templates: readonly string[],
): Promise<Float32Array> {
  const dim = bundle.manifest.architecture.embedDim;
  const encoder = await ClipTextEncoder.create(bundle, { threads: 1 });
  try {
    const tokenizer = await tokenizerForBundle(bundle);
    const protos = await classPrototypes({ encoder, tokenizer, dim }, classNames, templates);
    return await scaledCosineScores(embeddings, protos, dim, bundle.manifest.logitScale);
  } finally {
    await encoder.close();
  }
}
