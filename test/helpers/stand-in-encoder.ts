import type { ImageEncoder } from '../../core/model/onnx/encoders';

/**
 * An image encoder stand-in for tests about what reaches the encoder, not what it computes:
 * takes float32 NCHW batches as the reference graph does, returns `dim`-wide rows filled with
 * `value`, and hands each batch buffer back as the real encoder does (embedImages reuses them).
 */
export function standInEncoder(dim: number, imageSize = 224, value = 0): ImageEncoder {
  return {
    inputFormat: 'float32-nchw',
    allocate: (n: number) => new Float32Array(n * 3 * imageSize * imageSize),
    encode: (_pixels: Float32Array, n: number) =>
      Promise.resolve(new Float32Array(n * dim).fill(value)),
    encodeReturning: (pixels: Float32Array, n: number) =>
      Promise.resolve({ embeddings: new Float32Array(n * dim).fill(value), pixels }),
  } as unknown as ImageEncoder;
}
