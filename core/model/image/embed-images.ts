import { mapOrdered } from '../../util/concurrency';
import type { ImageEncoder } from '../onnx/encoders';
import {
  ImageDecodeError,
  type PreprocessParams,
  decodeToCrop,
  decodeToViews,
  normalizeInto,
} from './preprocess';

export interface ImageSource {
  id: string;
  /** The encoded file, or a thunk that fetches it (so fetching overlaps with encoding too). */
  bytes: Uint8Array | (() => Promise<Uint8Array>);
  /** Augmented training views to embed besides the center crop (view 0); default none. */
  views?: number;
}

export interface EmbeddedBatch {
  ids: string[];
  /** Per row: 0 for the center crop, k for the k-th augmented view of ids[i]. */
  views: number[];
  /** L2-normalised, [ids.length, embedDim]. */
  embeddings: Float32Array;
  /** Images that could not be decoded, with the reason; they are left out of `ids`. */
  failed: { id: string; reason: string }[];
}

/**
 * Fetch, decode and preprocess images with bounded concurrency while the encoder (in its own
 * thread) runs the previous batch: one batch encoding, one filling. Undecodable images are
 * reported per batch, never thrown.
 */
export async function* embedImages(
  source: AsyncIterable<ImageSource> | Iterable<ImageSource>,
  encoder: ImageEncoder,
  params: PreprocessParams,
  opts: { batchSize: number; concurrency: number; maxPixels?: number; augmentSeed?: string },
): AsyncGenerator<EmbeddedBatch> {
  const size = 3 * params.imageSize * params.imageSize;
  const decode = async (item: ImageSource) => {
    try {
      const bytes = typeof item.bytes === 'function' ? await item.bytes() : item.bytes;
      const limits = opts.maxPixels ? { maxPixels: opts.maxPixels } : {};
      const crops = item.views
        ? await decodeToViews(
            bytes,
            params.imageSize,
            { views: item.views, seed: opts.augmentSeed ?? '', imageId: item.id },
            limits,
          )
        : [(await decodeToCrop(bytes, params.imageSize, limits)).rgb];
      return { id: item.id, crops };
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err; // S3 and other failures are the caller's to retry
      return { id: item.id, reason: `${err.reason}: ${err.message}` };
    }
  };

  let pixels = new Float32Array(opts.batchSize * size);
  let ids: string[] = [];
  let views: number[] = [];
  let failed: EmbeddedBatch['failed'] = [];
  let inFlight: Promise<EmbeddedBatch> | undefined;
  const launch = () => {
    const batch = { ids, views, failed };
    const n = ids.length;
    const run =
      n > 0
        ? encoder.encode(n === opts.batchSize ? pixels : pixels.slice(0, n * size), n)
        : Promise.resolve(new Float32Array(0));
    pixels = new Float32Array(opts.batchSize * size);
    ids = [];
    views = [];
    failed = [];
    return run.then((embeddings) => ({ ...batch, embeddings }));
  };

  for await (const d of mapOrdered(source, opts.concurrency, decode)) {
    if (!d.crops) failed.push({ id: d.id, reason: d.reason ?? 'unknown' });
    for (const [view, rgb] of (d.crops ?? []).entries()) {
      normalizeInto(rgb, params, pixels, ids.length * size);
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
