import {
  type ByteBudget,
  type ByteLease,
  formatBytes,
  OverBudgetError,
} from '../../util/byte-budget';
import { mapOrdered } from '../../util/concurrency';
import type { ImageEncoder } from '../onnx/encoders';
import { type DecodePool, PreprocessFailedError } from './decode-pool';
import {
  type DecodeOptions,
  ImageDecodeError,
  type PreprocessParams,
  decodeImage,
  decodeToCrop,
  decodeToViews,
} from './preprocess';
import { decodeToCropFast } from './fast-crop';
import { augmentedViews, cropInto, formatOf, type PixelBuffer } from './pixels';
import type { PreprocessingMode } from '../../config/run-spec';

export interface ImageSource {
  id: string;
  /**
   * The encoded file, or a thunk that fetches it (so fetching overlaps with encoding too). A
   * thunk may throw an ImageDecodeError to skip the image with that reason.
   */
  bytes: Uint8Array | (() => Promise<Uint8Array>);
  /** The encoded file's size when known before fetching it (from the plan): checked first. */
  size?: number;
  /** Augmented training views to embed besides the center crop (view 0); default none. */
  views?: number;
}

/** What one image may cost; every refusal is a failed image with reason `too-large`. */
export interface ImageLimits {
  /** Largest encoded file, in bytes (checked on `size` before fetching, and on what arrives). */
  maxBytes?: number;
  /** Largest image decoded, in pixels (from the header, before any pixel is decoded). */
  maxPixels?: number;
  /**
   * The worker's budget for images in flight, shared by every shard it runs: an image holds its
   * encoded size while it is fetched, then that plus decodeMemoryEstimate while it is decoded.
   * An image that needs more than the whole budget is refused.
   */
  budget?: ByteBudget;
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
 * reported per batch, never thrown. With a decode pool, the resize, crops and normalisation run
 * in its threads (the same code, the same bytes) and the main thread only copies each image's
 * crops into the batch; without one (or a pool of size 0 upstream), they run here.
 */
export async function* embedImages(
  source: AsyncIterable<ImageSource> | Iterable<ImageSource>,
  encoder: ImageEncoder,
  params: PreprocessParams,
  opts: {
    batchSize: number;
    concurrency: number;
    /** Same as limits.maxPixels. */
    maxPixels?: number;
    limits?: ImageLimits;
    augmentSeed?: string;
    signal?: AbortSignal;
    /** Worker threads for the resize, crops and normalisation; default: this thread. */
    pool?: DecodePool;
    /**
     * `exact` (default) or `fast` (./fast-crop.ts): in fast mode the center crop comes from
     * libvips on this thread (no pool: there is no JS resample to offload, and the crop is small
     * to normalise), and augmented views are still cut by exact's code from a full decode.
     */
    preprocessing?: PreprocessingMode;
  },
): AsyncGenerator<EmbeddedBatch> {
  const size = 3 * params.imageSize * params.imageSize;
  // The batch holds what the graph takes (encoder.inputFormat); the pool's threads, which get
  // `params`, write the same (uint8-nhwc: the crops' bytes, no normalisation in JavaScript).
  params = { ...params, format: encoder.inputFormat };
  const limits: ImageLimits = { maxPixels: opts.maxPixels, ...opts.limits };
  const decode = async (item: ImageSource) => {
    let lease: ByteLease | undefined;
    try {
      lease = await reserveFetch(item, limits, opts.signal);
      const bytes = typeof item.bytes === 'function' ? await item.bytes() : item.bytes;
      checkBytes(bytes.length, limits);
      const held = lease;
      const decodeOpts: DecodeOptions = {
        ...(limits.maxPixels ? { maxPixels: limits.maxPixels } : {}),
        ...(held
          ? {
              reserve: (need: number) =>
                held.resize(bytes.length + need, opts.signal).catch(refuseOverBudget),
            }
          : {}),
      };
      if (opts.preprocessing === 'fast') {
        const crop = await decodeToCropFast(bytes, params, decodeOpts);
        const views = item.views ?? 0;
        if (views === 0) return { id: item.id, crops: [crop.rgb] };
        const src = await decodeImage(bytes, params.imageSize, views, decodeOpts);
        const spec = { views, seed: opts.augmentSeed ?? '', imageId: item.id };
        return { id: item.id, crops: [crop.rgb, ...augmentedViews(src, params.imageSize, spec)] };
      }
      const pool = opts.pool;
      if (pool) {
        const views = item.views ?? 0;
        const src = await decodeImage(bytes, params.imageSize, views, {
          ...decodeOpts,
          pooled: true,
        });
        const spec = views ? { views, seed: opts.augmentSeed ?? '', imageId: item.id } : undefined;
        return { id: item.id, slab: await pool.preprocess(src, params, spec), count: 1 + views };
      }
      const crops = item.views
        ? await decodeToViews(
            bytes,
            params,
            { views: item.views, seed: opts.augmentSeed ?? '', imageId: item.id },
            decodeOpts,
          )
        : [(await decodeToCrop(bytes, params, decodeOpts)).rgb];
      return { id: item.id, crops };
    } catch (err) {
      // A pool thread's failure on this image (its error, or its thread dying): the image's.
      if (err instanceof PreprocessFailedError) return { id: item.id, reason: err.message };
      if (!(err instanceof ImageDecodeError)) throw err; // S3 and other failures are the caller's to retry
      // Messages start with their reason already ("too-large: ...").
      const reason = err.message.startsWith(err.reason)
        ? err.message
        : `${err.reason}: ${err.message}`;
      return { id: item.id, reason };
    } finally {
      lease?.release();
    }
  };

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
        ? encoder.encodeReturning(n === opts.batchSize ? pixels : pixels.slice(0, n * size), n)
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

  for await (const d of mapOrdered(source, imageConcurrency(opts.concurrency, limits), decode)) {
    if (!d.crops && !d.slab) failed.push({ id: d.id, reason: d.reason ?? 'unknown' });
    const count = d.crops?.length ?? d.count ?? 0;
    for (let view = 0; view < count; view++) {
      const at = ids.length * size;
      if (d.slab) setSlab(pixels, d.slab.subarray(view * size, (view + 1) * size), at);
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

/** A pool thread's crops into the batch: the same format, or a bug (checked, not coerced). */
function setSlab(pixels: PixelBuffer, slab: PixelBuffer, at: number): void {
  if (formatOf(slab) !== formatOf(pixels))
    throw new TypeError(`a ${formatOf(slab)} slab cannot fill a ${formatOf(pixels)} batch`);
  (pixels as Uint8Array).set(slab, at);
}

/**
 * The images a worker decodes at once for one shard: the requested concurrency, capped so that
 * the largest files allowed all fit the budget together (more lanes would only wait on it, each
 * holding its fetched file meanwhile).
 */
export function imageConcurrency(requested: number, limits: ImageLimits | undefined): number {
  const { budget, maxBytes } = limits ?? {};
  if (!budget || !maxBytes) return Math.max(1, requested);
  return Math.max(1, Math.min(requested, Math.floor(budget.capacity / maxBytes)));
}

/** Holds the encoded size of the image in the budget while it is fetched (0 if not known). */
async function reserveFetch(
  item: ImageSource,
  limits: ImageLimits,
  signal: AbortSignal | undefined,
): Promise<ByteLease | undefined> {
  if (item.size !== undefined) checkBytes(item.size, limits);
  return limits.budget?.acquire(item.size ?? 0, signal).catch(refuseOverBudget);
}

function checkBytes(bytes: number, limits: ImageLimits): void {
  if (limits.maxBytes !== undefined && bytes > limits.maxBytes)
    throw new ImageDecodeError(
      'too-large',
      `too-large: the file is ${formatBytes(bytes)}, over the limit of ${formatBytes(limits.maxBytes)} per image (CLIPEVAL_MAX_IMAGE_BYTES)`,
    );
}

/** A request over the whole budget is this image's failure (too-large), not the shard's. */
function refuseOverBudget(err: unknown): never {
  if (err instanceof OverBudgetError)
    throw new ImageDecodeError(
      'too-large',
      `too-large: decoding it ${err.message} for images in flight (CLIPEVAL_IMAGE_MEMORY_BUDGET)`,
    );
  throw err;
}
