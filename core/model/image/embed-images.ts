import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { timed } from '../../util/phase-profile';
import type { ImageEncoder } from '../onnx/encoders';
import { decodeImages, type DecodeImagesOptions, type ImageSource } from './decode-images';
import type { DecodedImageSource } from './preprocessor';
import type { PreprocessParams } from './preprocess';
import { cropInto, formatOf, type PixelBuffer } from './pixels';

export type { DecodedImage, DecodedImageSource, ImageLimits, ImageSource } from './decode-images';
export { imageConcurrency } from './decode-images';

export interface EmbeddedBatch {
  ids: string[];
  /** Per row: 0 for the center crop, k for the k-th augmented view of ids[i]. */
  views: number[];
  /** L2-normalised, [ids.length, embedDim]. */
  embeddings: Float32Array;
  /** Images that could not be decoded, with the reason; they are left out of `ids`. */
  failed: { id: string; reason: string }[];
}

/** Main-thread work between turns of the event loop while filling batches. */
const TURN_MS = 8;

/**
 * Fetch, decode and preprocess images with bounded concurrency while the encoder (in its own
 * thread) runs the previous batch: one batch encoding, one filling. Undecodable images are
 * reported per batch, never thrown. With a decode pool, the resize, crops and normalisation run
 * in its threads (the same code, the same bytes) and the main thread only copies each image's
 * crops into the batch; without one (or a pool of size 0 upstream), they run here.
 */
export function embedImages(
  source: AsyncIterable<ImageSource> | Iterable<ImageSource>,
  encoder: ImageEncoder,
  params: PreprocessParams,
  opts: DecodeImagesOptions & { batchSize: number },
): AsyncGenerator<EmbeddedBatch> {
  // The pool's threads, which get `params`, write what the graph takes (encoder.inputFormat):
  // for uint8-nhwc the crops' bytes, no normalisation in JavaScript.
  const decoded = decodeImages(source, { ...params, format: encoder.inputFormat }, opts);
  return embedDecoded(decoded, encoder, params, opts);
}

/**
 * Decoded images (./decode-images.ts's Preprocessor stream, or crops read back from the pixel
 * cache: core/embeddings/shard-pixels.ts) into batches of `batchSize` rows for the encoder, in
 * order: one batch encoding while the next fills. A crop is normalised into float32 batches here when it arrives as bytes; a pool's slab must already be
 * in the batch's format. The same images in the same order make the same batches, whatever they
 * came from: that is what makes cached pixels embed byte-identically.
 */
export async function* embedDecoded(
  decoded: DecodedImageSource,
  encoder: ImageEncoder,
  params: PreprocessParams,
  opts: { batchSize: number },
): AsyncGenerator<EmbeddedBatch> {
  const size = 3 * params.imageSize * params.imageSize;
  params = { ...params, format: encoder.inputFormat };
  // Batch buffers come back from the encoder's thread once it has run them, and are refilled.
  const spare: PixelBuffer[] = [];
  const fresh = () => spare.pop() ?? encoder.allocate(opts.batchSize);
  let pixels = fresh();
  let ids: string[] = [];
  let views: number[] = [];
  let failed: EmbeddedBatch['failed'] = [];
  let inFlight: Promise<EmbeddedBatch> | undefined;
  const launch = () => {
    const batch = { ids, views, failed };
    const n = ids.length;
    const run =
      n > 0
        ? timed('inference', () =>
            encoder.encodeReturning(n === opts.batchSize ? pixels : pixels.slice(0, n * size), n),
          )
        : Promise.resolve({ embeddings: new Float32Array(0), pixels: undefined });
    pixels = fresh();
    ids = [];
    views = [];
    failed = [];
    return run.then(({ embeddings, pixels: used }) => {
      if (used?.length === opts.batchSize * size) spare.push(used);
      return { ...batch, embeddings };
    });
  };

  let turnStart = performance.now();
  for await (const d of decoded) {
    // Images that arrive together (the decoder's ordered queue releases them at once) are taken
    // in one go, and a byte crop normalised into a float batch costs ~0.4 ms here (1+ ms on a
    // busy 2-core box): without a turn back to the event loop a batch of them delays heartbeats
    // and cancellation by tens of ms (bench/extract.ts's stall column).
    if (performance.now() - turnStart > TURN_MS) {
      await yieldToEventLoop();
      turnStart = performance.now();
    }
    if (!d.crops && !d.slab) failed.push({ id: d.id, reason: d.reason ?? 'unknown' });
    const count = d.crops?.length ?? (d.slab ? d.count : 0);
    for (let view = 0; view < count; view++) {
      const at = ids.length * size;
      if (d.slab) setSlab(pixels, d.slab.subarray(view * size, (view + 1) * size), params, at);
      else if (d.crops) cropInto(d.crops[view]!, params, pixels, at);
      ids.push(d.id);
      views.push(view);
      if (ids.length === opts.batchSize) {
        const next = launch();
        if (inFlight) yield await inFlight;
        inFlight = next;
      }
    }
  }
  const last = ids.length > 0 || failed.length > 0 ? launch() : undefined;
  if (inFlight) yield await inFlight;
  if (last) yield await last;
}

/**
 * One crop of a pool thread's slab into the batch: copied when it has the batch's format; bytes
 * normalised into a float32 batch (the slab was decoded for the pixel cache, which keeps bytes);
 * floats into a byte batch are a bug (checked, not coerced).
 */
function setSlab(
  pixels: PixelBuffer,
  slab: PixelBuffer,
  params: PreprocessParams,
  at: number,
): void {
  if (formatOf(slab) === formatOf(pixels)) (pixels as Uint8Array).set(slab, at);
  else if (slab instanceof Uint8Array) cropInto(slab, params, pixels, at);
  else throw new TypeError(`a ${formatOf(slab)} slab cannot fill a ${formatOf(pixels)} batch`);
}
